"""Gaps in positions (compaction removed events): every reader takes them in its stride.

Positions are never reused; heads and stream versions never move back; reads by position, by
stream, backwards and forwards, paging, export, catch-up and rebuild skip the holes.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import cast

import pytest

from obt.api.audit import ndjson
from obt.bootstrap import make_codec
from obt.errors import EventRemovalRefused
from obt.projections.replay import client_state, fleet_state
from obt.projections.runner import ProjectionRunner
from obt.store.event_pages import EventFilter, page_after, page_before
from obt.store.ports import CompactableStore, NewEvent, Store
from tests.support.fleet import Fleet

from .harness import Harness
from .test_event_log import T0, append, event


def compactable(store: Store) -> CompactableStore:
    return cast("CompactableStore", store)


async def seeded(store: Store) -> None:
    """Positions 1..12: client-a versions 1..6 at odd positions, client-b at even ones."""
    for _ in range(6):
        await append(store, "client-a", event())
        await append(store, "client-b", event())


async def test_removed_positions_are_skipped_by_every_read(store: Store) -> None:
    await seeded(store)
    removed = await compactable(store).remove_events([3, 4, 5, 9])
    assert removed == 4
    ascending = [e.position for e in await store.read_all(limit=100)]
    assert ascending == [1, 2, 6, 7, 8, 10, 11, 12]
    assert [e.position for e in await store.read_all(after=2, limit=2)] == [6, 7]
    assert [e.position for e in await store.read_all(until=5, limit=100)] == [1, 2]
    backwards = await store.read_all(until=9, limit=3, descending=True)
    assert [e.position for e in backwards] == [8, 7, 6]
    stream_a = await store.read_stream("client-a")
    assert [(e.version, e.position) for e in stream_a] == [(1, 1), (4, 7), (6, 11)]
    assert [e.version for e in await store.read_stream("client-a", after_version=2)] == [4, 6]
    assert [e.version for e in await store.read_stream("client-a", after_version=1, limit=1)] == [4]
    assert await store.head() == 12
    assert await store.stream_version("client-a") == 6
    assert await store.stream_version("client-b") == 6


async def test_positions_and_versions_are_never_reused_after_removal(store: Store) -> None:
    await seeded(store)
    await compactable(store).remove_events([2, 3, 4])
    result = await append(store, "client-a", event(), expected=6)
    assert (result.version, result.positions) == (7, (13,))
    more = await append(store, "client-c", event(), event())
    assert more.positions == (14, 15)
    assert [e.position for e in await store.read_all(after=1, limit=3)] == [5, 6, 7]


async def test_removing_the_head_or_a_streams_last_event_is_refused_and_removes_nothing(
    store: Store,
) -> None:
    await seeded(store)
    log = compactable(store)
    with pytest.raises(EventRemovalRefused):
        await log.remove_events([1, 12])  # 12 is the head (and client-b's last)
    with pytest.raises(EventRemovalRefused):
        await log.remove_events([3, 11])  # 11 is client-a's last event
    assert len(await store.read_all(limit=100)) == 12
    assert await store.stream_version("client-a") == 6


async def test_removing_positions_already_gone_is_a_no_op(store: Store) -> None:
    await seeded(store)
    log = compactable(store)
    assert await log.remove_events([3, 5]) == 2
    assert await log.remove_events([3, 5, 7]) == 1
    assert await log.remove_events([3, 5, 7, 10_000]) == 0
    assert [e.position for e in await store.read_all(limit=100)][:4] == [1, 2, 4, 6]


async def test_position_at_answers_with_a_position_that_is_still_there(store: Store) -> None:
    for minute in range(6):
        await store.append(
            "client-a", [event()], expected_version=None, recorded_at=T0 + timedelta(minutes=minute)
        )
    await store.append("client-a", [event()], expected_version=None, recorded_at=T0)
    await compactable(store).remove_events([4, 5])
    assert await store.position_at(T0 + timedelta(minutes=4, seconds=30)) == 3
    assert await store.position_at(T0 + timedelta(minutes=5)) == 7  # recorded_at never goes back


async def test_pages_and_export_cross_gaps_with_honest_cursors(store: Store) -> None:
    await seeded(store)
    await compactable(store).remove_events(range(2, 11))  # 2..10: only 1, 11, 12 remain
    everything = EventFilter()
    first = await page_after(store, 0, 1, everything)
    assert [e.position for e in first.items] == [1]
    assert first.next_after == 1
    second = await page_after(store, first.next_after or 0, 1, everything)
    assert [e.position for e in second.items] == [11]
    assert second.next_before == 11
    back = await page_before(store, 11, 5, everything)
    assert [e.position for e in back.items] == [1]
    assert back.next_before is None
    lines = [line async for chunk in ndjson(store) for line in chunk.splitlines()]
    assert len(lines) == 3


async def test_a_tailing_reader_after_a_gap_misses_nothing_and_repeats_nothing(
    store: Store,
) -> None:
    await seeded(store)
    await compactable(store).remove_events([7, 8, 9, 10])
    seen: list[int] = []
    after = 0
    await append(store, "client-c", event())
    while batch := await store.read_all(after=after, limit=2):
        seen.extend(e.position for e in batch)
        after = batch[-1].position
    assert seen == [1, 2, 3, 4, 5, 6, 11, 12, 13]
    assert await store.wait_for_append(after, 0.01) == 13


async def test_projections_catch_up_and_rebuild_across_gaps(harness: Harness) -> None:
    """Projection runner, rebuild, aggregate warm-up and audit replay over a log with holes."""
    store = await harness.open(make_codec())
    try:
        fleet = Fleet(store)
        await fleet.start()
        for cid in ("a", "b"):
            await fleet.register(cid)
        for _ in range(6):
            fleet.clock.advance(10)
            for cid in ("a", "b"):
                await fleet.heartbeat(cid)
        fleet.clock.advance(10)
        await fleet.heartbeat("a", reachable=False)
        # Middle heartbeats of a same-status run change no read model: take them out.
        hearts = await store.read_all(types=["HeartbeatReceived"], limit=100)
        middle = [e.position for e in hearts if e.data["seq"] in (2, 3, 4)]
        await compactable(store).remove_events(middle)
        runner = ProjectionRunner(store, batch_size=3)
        await runner.start()
        await runner.catch_up()
        live = await fleet.dump()
        assert live["clients"], "the clients read model was built"
        await runner.rebuild()
        assert await fleet.dump() == live
        warmed = Fleet(store)
        assert await warmed.repo.warm() == 2
        assert (await warmed.repo.load("a")).last_seq == 7
        position, clients = await fleet_state(store, fleet.clock.now())
        assert position == await store.head()
        assert [c["client_id"] for c in clients] == ["a", "b"]
        at, client = await client_state(store, "b", fleet.clock.now())
        assert client is not None and client["status"] == "online" and at == position
    finally:
        await store.close()


async def test_a_new_event_id_may_follow_a_removed_one_with_the_same_stream(store: Store) -> None:
    """Removed events are gone from id lookups too: their ids are in the archive now."""
    same = NewEvent(id=str(uuid.uuid4()), type="HeartbeatReceived", data={"seq": 1})
    await store.append("client-a", [same], expected_version=None, recorded_at=T0)
    await append(store, "client-a", event())
    await compactable(store).remove_events([1])
    again = await store.append("client-a", [same], expected_version=None, recorded_at=T0)
    assert again.positions == (3,)
