"""Compaction on every store: what it moves, what it keeps, and a crash at each of its steps."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest

from obt.compaction import STEPS, Compactor
from obt.store.archive import read_events, uncompress
from obt.store.archive_verify import compactions, verify_archive
from obt.store.ports import CompactableStore, RecordedEvent, Store
from tests.support.fleet import Fleet

DAY = 86_400


class Crash(Exception):
    """The compacting process died here."""


async def history(store: Store) -> Fleet:
    """Two clients beating for a while, a), b) an Ollama outage on a, two days later more."""
    fleet = Fleet(store)
    await fleet.start()
    await fleet.register("a")
    await fleet.register("b")
    for i in range(12):
        fleet.clock.advance(10)
        await fleet.heartbeat("a", reachable=not 5 <= i < 8)
        await fleet.heartbeat("b")
    fleet.clock.advance(2 * DAY)
    await fleet.register("a", new_session=True)
    for _ in range(3):
        fleet.clock.advance(10)
        await fleet.heartbeat("a")
    await fleet.project()
    return fleet


def compactor(store: Store, fleet: Fleet, **options: object) -> Compactor:
    return Compactor(
        cast("CompactableStore", store),
        timedelta(days=1),
        fleet.clock.now,
        **options,  # type: ignore[arg-type]
    )


async def archived_events(store: Store) -> list[dict[str, object]]:
    archive = cast("CompactableStore", store).archive()
    lines: list[dict[str, object]] = []
    for entry in await archive.entries():
        lines.extend(read_events(uncompress(await archive.body(entry.segment_id))))
    return lines


def heartbeats(events: list[RecordedEvent], cid: str) -> list[int]:
    return [
        e.data["seq"]
        for e in events
        if e.type == "HeartbeatReceived" and e.stream == f"client-{cid}"
    ]


async def test_a_run_keeps_its_ends_and_each_heartbeat_next_to_a_change(opened: Store) -> None:
    store = opened
    fleet = await history(store)
    before = await fleet.dump()
    report = await compactor(store, fleet).run()
    live = await store.read_all(limit=10_000)
    # a: seqs 1-5 up, 6-8 down (OllamaBecameUnavailable follows 6), 9-12 up (OllamaBecame-
    # Available follows 9). Kept: each run's ends, each neighbour of another event, and the
    # last day's session (inside the retention).
    assert heartbeats(live, "a") == [1, 5, 6, 7, 8, 9, 10, 12, 1, 2, 3]
    assert heartbeats(live, "b") == [1, 12]  # its last heartbeat, also the stream's last event
    assert report.removed == 10 + 4 and report.horizon_position > 0
    recorded = await compactions(store)
    assert [e.data["segment_id"] for e in recorded] == report.segments
    assert sum(e.data["removed"] for e in recorded) == report.removed
    moved = await archived_events(store)
    assert len(moved) == report.removed
    assert {line["type"] for line in moved} == {"HeartbeatReceived"}
    assert (await verify_archive(cast("CompactableStore", store).archive(), store)).ok
    await fleet.runner.rebuild()
    assert await fleet.dump() == before


async def test_heartbeats_within_the_retention_stay_and_a_second_run_moves_nothing(
    opened: Store,
) -> None:
    store = opened
    fleet = await history(store)
    first = await compactor(store, fleet).run()
    again = await compactor(store, fleet).run()
    assert first.removed > 0 and again.removed == 0 and again.segments == []
    live = await store.read_all(limit=10_000)
    assert heartbeats(live, "a")[-3:] == [1, 2, 3]  # the last day's session, all of it


async def test_a_dry_run_counts_and_changes_nothing(opened: Store) -> None:
    store = opened
    fleet = await history(store)
    log = await store.read_all(limit=10_000)
    dry = await compactor(store, fleet).run(dry_run=True)
    assert dry.dry_run and dry.removed == 14 and dry.segments == []
    assert await store.read_all(limit=10_000) == log
    assert await cast("CompactableStore", store).archive().entries() == []


@pytest.mark.parametrize("step", STEPS)
async def test_a_crash_at_any_step_loses_nothing_and_recovery_doubles_nothing(
    opened: Store, step: str
) -> None:
    store = opened
    fleet = await history(store)
    before = await fleet.dump()
    log = {e.position: e.id for e in await store.read_all(limit=10_000)}

    def fault(at: str) -> None:
        if at == step:
            raise Crash(at)

    crashing = compactor(store, fleet, segment_events=4, remove_batch=2, fault=fault)
    with pytest.raises(Crash):
        await crashing.run()
    # Right after the crash: every event is in the log or in a segment that verifies.
    live = {e.position for e in await store.read_all(limit=10_000)}
    moved = {int(line["position"]) for line in await archived_events(store)}  # type: ignore[call-overload]
    assert set(log) <= live | moved
    restarted = compactor(store, fleet, segment_events=4, remove_batch=2)
    report = await restarted.run()
    live = {e.position for e in await store.read_all(limit=10_000)}
    moved_list = [int(line["position"]) for line in await archived_events(store)]  # type: ignore[call-overload]
    assert not live & set(moved_list), "an event both in the log and in the archive"
    assert len(moved_list) == len(set(moved_list))
    assert set(log) <= live | set(moved_list)
    # The run after the crash starts at the recovered segment's end with no memory of what
    # came before, so it keeps the first heartbeats it meets in each stream: never more moved.
    assert 0 < len(moved_list) <= 14
    if step != "recorded":
        assert report.recovered, "the interrupted segment was finished"
    verified = await verify_archive(cast("CompactableStore", store).archive(), store)
    assert verified.ok, verified.findings
    await fleet.runner.rebuild()
    assert await fleet.dump() == before
