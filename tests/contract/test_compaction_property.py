"""Property: for any history, compaction moves only heartbeats no read model needs.

Random histories (the strategies of test_projections_property, plus runs of heartbeats and
compactions at random moments): after every compaction, rebuilding every read model from the
compacted log, and one fresh fold of it, give exactly the read models of before; no event is
lost or doubled (log + archive = the history), and the archive verifies. On every store.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obt.bootstrap import make_codec
from obt.compaction import Compactor
from obt.store.archive import read_events, uncompress
from obt.store.archive_verify import verify_archive
from obt.store.memory import MemoryStore
from obt.store.ports import CompactableStore, Store
from tests.support.fleet import Fleet

from .test_projections_property import ACTION, CLIENTS, fresh_fold, play

BEATS = st.tuples(st.just("beats"), CLIENTS, st.booleans(), st.integers(2, 9))
COMPACT = st.tuples(st.just("compact"), st.integers(0, 600))
STEPS = st.lists(st.one_of(ACTION, BEATS, BEATS, COMPACT), min_size=1, max_size=40)


async def compact_and_check(fleet: Fleet, retention_s: int, sizes: tuple[int, int, int]) -> int:
    """Compact; the read models rebuilt from the compacted log equal those of before."""
    store = cast("CompactableStore", fleet.store)
    await fleet.project()
    before = await fleet.dump()
    history = {e.position: e for e in await store.read_all(limit=10**9)}
    segment_events, read_batch, remove_batch = sizes
    compactor = Compactor(
        store,
        timedelta(seconds=retention_s),
        fleet.clock.now,
        segment_events=segment_events,
        read_batch=read_batch,
        remove_batch=remove_batch,
    )
    report = await compactor.run()
    horizon = report.horizon_position
    assert await fleet.dump() == before  # the live read models never noticed
    await fleet.project()
    assert await fleet.dump() == before  # LogCompacted changes no read model
    await fleet.runner.rebuild()
    assert await fleet.dump() == before
    assert await fresh_fold(store) == before
    # Nothing lost, nothing doubled; only heartbeats at or below the horizon moved.
    live = {e.position for e in await store.read_all(limit=10**9)}
    archived: list[int] = []
    archive = store.archive()
    for entry in await archive.entries():
        lines = read_events(uncompress(await archive.body(entry.segment_id)))
        archived.extend(line["position"] for line in lines)
        assert all(line["type"] == "HeartbeatReceived" for line in lines)
    assert not live & set(archived)
    assert len(archived) == len(set(archived))
    assert set(history) <= live | set(archived)
    moved_now = set(history) - live
    assert all(history[p].type == "HeartbeatReceived" and p <= horizon for p in moved_now)
    assert len(moved_now) == report.removed
    verified = await verify_archive(archive, store)
    assert verified.ok, verified.findings
    return report.removed


async def check_history(
    store: Store, steps: Sequence[tuple[Any, ...]], sizes: tuple[int, int, int]
) -> None:
    fleet = Fleet(store)
    await fleet.start()
    for step in steps:
        name, *args = step
        if name == "beats":
            cid, reachable, count = args
            for _ in range(count):
                fleet.clock.advance(10)
                await play(fleet, [("heartbeat", cid, reachable)])
        elif name == "compact":
            await compact_and_check(fleet, args[0], sizes)
        else:
            await play(fleet, [step])
    await compact_and_check(fleet, 0, sizes)
    # The aggregates, warmed from snapshots and the compacted log, decide as before.
    fresh = Fleet(store, fleet.clock)
    await fresh.repo.warm()
    for state in fleet.repo.cached():
        assert (await fresh.repo.load(state.client_id)).to_snapshot() == state.to_snapshot()


def run_property(open_store: Callable[[str], Awaitable[Store]], data: st.DataObject) -> None:
    steps = data.draw(STEPS)
    sizes = (
        data.draw(st.integers(1, 6)),
        data.draw(st.integers(2, 9)),
        data.draw(st.integers(1, 4)),
    )

    async def main() -> None:
        store = await open_store(uuid.uuid4().hex[:12])
        try:
            await check_history(store, steps, sizes)
        finally:
            await store.close()

    asyncio.run(main())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compaction_keeps_every_read_model_on_memory(data: st.DataObject) -> None:
    async def open_store(_: str) -> Store:
        return MemoryStore(make_codec())

    run_property(open_store, data)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compaction_keeps_every_read_model_on_sqlite(data: st.DataObject) -> None:
    from obt.store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:

        async def open_store(name: str) -> Store:
            folder = Path(tmp) / name
            folder.mkdir()
            store = SQLiteStore(folder / "obt.sqlite3", make_codec())
            await store.open()
            return store

        run_property(open_store, data)


@pytest.mark.mongodb
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compaction_keeps_every_read_model_on_mongodb(
    secantus_uri: str, data: st.DataObject
) -> None:
    from obt.store.mongodb import MongoStore

    async def open_store(name: str) -> Store:
        store = MongoStore(secantus_uri, f"compact_{name}", make_codec())
        await store.open()
        return store

    run_property(open_store, data)
