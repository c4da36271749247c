"""The store monitor on a fake clock and the in-memory store: a store outage refuses writes at
once, holds the timeout scheduler, and is recorded as a server outage (unknown), never as the
clients' downtime."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from obt.bootstrap import make_codec
from obt.commands.lifecycle import STORE_OUTAGE_REASON
from obt.errors import StoreUnavailable
from obt.projections.queries import ReadModels
from obt.scheduler import TimeoutScheduler
from obt.store.memory import MemoryStore
from obt.store_monitor import StoreMonitor
from tests.support.fleet import Fleet


class FlakyStore(MemoryStore):
    """The in-memory store, switched off and on by the test."""

    def __init__(self) -> None:
        super().__init__(make_codec())
        self.down = False
        self.hang = False

    async def ping(self) -> float:
        if self.hang:
            await asyncio.Event().wait()
        if self.down:
            raise StoreUnavailable("connection refused")
        return await super().ping()

    async def append(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.down:
            raise StoreUnavailable("connection refused")
        return await super().append(*args, **kwargs)


@pytest.fixture
async def fleet() -> Fleet:
    f = Fleet(FlakyStore())
    await f.start()
    return f


def monitor_of(fleet: Fleet, **options: float) -> StoreMonitor:
    monitor = StoreMonitor(fleet.store, fleet.lifecycle, fleet.clock, **options)
    fleet.commands._write_gate = monitor.refuse_writes_while_down
    return monitor


def flaky(fleet: Fleet) -> FlakyStore:
    assert isinstance(fleet.store, FlakyStore)
    return fleet.store


async def client_doc(fleet: Fleet, cid: str) -> dict[str, object]:
    await fleet.project()
    doc = await ReadModels(fleet.store).client(cid, fleet.clock.now())
    assert doc is not None
    return doc


async def test_an_outage_is_unknown_time_and_charges_no_client(fleet: Fleet) -> None:
    monitor = monitor_of(fleet)
    scheduler = TimeoutScheduler(fleet.sweep, 1.0, hold=monitor.hold_reason)
    await fleet.register("a")
    await fleet.register("b")
    fleet.clock.advance(5)
    assert await monitor.check()
    await fleet.heartbeat("a")
    await fleet.heartbeat("b")
    assert (await client_doc(fleet, "a"))["status"] == "online"

    flaky(fleet).down = True
    fleet.clock.advance(1)
    down_since = fleet.clock.now()
    assert not await monitor.check()
    assert monitor.down_since == down_since
    # Writes are refused without touching the store; the scheduler holds its sweeps although
    # every client is far past its timeout.
    flaky(fleet).down = False  # a write that reached the store would now succeed
    with pytest.raises(StoreUnavailable, match="unreachable since"):
        await fleet.heartbeat("a")
    flaky(fleet).down = True
    fleet.clock.advance(60)
    assert not await monitor.check()
    assert monitor.down_since == down_since  # the first failure, not the latest
    assert await scheduler.run_once() == []
    assert scheduler.held is not None

    flaky(fleet).down = False
    fleet.clock.advance(4)
    back = fleet.clock.now()
    assert await monitor.check()
    assert monitor.down_since is None
    assert fleet.lifecycle.started_at == back
    system = await fleet.store.read_stream("system")
    stopped, started = system[-2], system[-1]
    assert stopped.type == "ServerStopped"
    assert stopped.data["reason"] == STORE_OUTAGE_REASON
    assert stopped.data["stopped_at"] == down_since.isoformat()
    assert started.type == "ServerStarted"
    assert started.data["previous_shutdown"] == "store_outage"
    assert started.data["started_at"] == back.isoformat()

    # Right after the store's return: unknown, and nobody is timed out (grace window).
    assert await scheduler.run_once() == []
    assert scheduler.held is None
    doc = await client_doc(fleet, "b")
    assert (doc["status"], doc["status_since"]) == ("unknown", down_since.isoformat())
    fleet.clock.advance(10)
    await fleet.heartbeat("a")
    assert (await client_doc(fleet, "a"))["status"] == "online"
    # b stays silent: offline only one timeout window after the store's return.
    fleet.clock.advance(19)
    assert await scheduler.run_once() == []
    fleet.clock.advance(2)
    assert await scheduler.run_once() == ["b"]
    doc = await client_doc(fleet, "b")
    assert doc["status"] == "offline"
    assert doc["status_since"] == back.isoformat()

    # The uptime read model counts the outage as unknown for both, as down for neither.
    for cid in ("a", "b"):
        uptime = await ReadModels(fleet.store).uptime(
            cid, back - timedelta(hours=1), fleet.clock.now(), "hour", fleet.clock.now()
        )
        totals = {k: sum(b[k] for b in uptime["items"]) for k in ("unknown_s", "down_s")}
        assert totals["unknown_s"] == pytest.approx((back - down_since).total_seconds(), abs=11)
        outage = [i for i in uptime["intervals"] if i["status"] == "unknown"]
        assert outage[0]["start"] == down_since.isoformat()
        if cid == "a":
            assert totals["down_s"] == 0


async def test_a_failed_recording_keeps_the_store_down_until_it_succeeds(fleet: Fleet) -> None:
    monitor = monitor_of(fleet)
    store = flaky(fleet)
    store.down = True
    assert not await monitor.check()
    fleet.clock.advance(3)

    original = store.append

    async def fail_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        store.append = original  # type: ignore[method-assign]
        raise StoreUnavailable("flapped")

    store.down = False
    store.append = fail_once  # type: ignore[method-assign]
    assert not await monitor.check()
    assert monitor.store_down
    assert await monitor.check()
    stops = [e for e in await store.read_stream("system") if e.type == "ServerStopped"]
    assert len(stops) == 1  # recorded once, not once per attempt


async def test_a_store_that_never_answers_counts_as_down(fleet: Fleet) -> None:
    monitor = monitor_of(fleet, ping_timeout_s=0.05)
    flaky(fleet).hang = True
    assert not await monitor.check()
    assert monitor.store_down
    assert "no answer within" in (monitor.last_error or "")
    assert monitor.describe()["outages"] == 1


async def test_run_checks_until_stopped(fleet: Fleet) -> None:
    monitor = monitor_of(fleet, interval_s=0.01)
    flaky(fleet).down = True
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    async with asyncio.timeout(5):
        while not monitor.store_down:
            await asyncio.sleep(0.01)
    stop.set()
    await task
