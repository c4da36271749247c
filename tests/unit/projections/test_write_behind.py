"""Projectors served from memory may have their writes held back; nothing is lost or doubled."""

from __future__ import annotations

from obt.bootstrap import make_codec
from obt.projections.base import Change
from obt.projections.clients import ClientsProjector
from obt.projections.runner import ProjectionRunner
from obt.store.memory import MemoryStore
from tests.contract.test_projections_property import fresh_fold
from tests.support.fleet import Fleet


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def fleet_with_runner(ticks: Ticks) -> tuple[Fleet, ProjectionRunner]:
    fleet = Fleet(MemoryStore(make_codec()))
    await fleet.start()
    runner = ProjectionRunner(fleet.store, write_behind_s=1.0, monotonic=ticks)
    await runner.start()
    await fleet.register("a")
    await fleet.register("b")
    await runner.catch_up()  # the first commit of each projector is never held
    return fleet, runner


async def stored(fleet: Fleet, collection: str, key: str) -> dict[str, object] | None:
    return await fleet.store.get(collection, key)


async def test_heartbeats_are_held_until_the_interval_passes() -> None:
    ticks = Ticks()
    fleet, runner = await fleet_with_runner(ticks)
    announced: list[Change] = []
    runner.subscribe(announced.extend)
    checkpoint = await fleet.store.checkpoint("clients")
    before = await stored(fleet, "clients", "a")

    fleet.clock.advance(10)
    await fleet.heartbeat("a")
    await runner.step()

    clients = runner.projector("clients")
    assert isinstance(clients, ClientsProjector)
    head = await fleet.store.head()
    assert runner.positions["clients"] == head  # processed, and readers see it at once ...
    assert clients.docs["a"]["last_seen"] == fleet.clock.now().isoformat()
    assert [c.key for c in announced if c.kind == "client"] == ["a"]  # ... and are told
    assert await fleet.store.checkpoint("clients") == checkpoint  # ... but nothing is stored
    assert await stored(fleet, "clients", "a") == before
    assert await fleet.store.checkpoint("client_state") < head

    ticks.now += 1.0
    fleet.clock.advance(10)
    await fleet.heartbeat("b")
    await runner.step()  # the interval has passed: everything held is stored with this batch
    head = await fleet.store.head()
    assert await fleet.store.checkpoint("clients") == head
    assert await fleet.store.checkpoint("client_state") == head
    assert await stored(fleet, "clients", "a") == clients.docs["a"]
    assert await stored(fleet, "clients", "b") == clients.docs["b"]


async def test_held_writes_are_stored_when_the_log_goes_quiet() -> None:
    ticks = Ticks()
    fleet, runner = await fleet_with_runner(ticks)
    await fleet.heartbeat("a")
    await runner.step()
    assert await fleet.store.checkpoint("clients") < await fleet.store.head()
    await runner.persist_held(only_due=True)
    assert await fleet.store.checkpoint("clients") < await fleet.store.head()  # not yet due
    ticks.now += 1.5
    await runner.persist_held(only_due=True)
    assert await fleet.store.checkpoint("clients") == await fleet.store.head()


async def test_a_crash_while_writes_are_held_loses_and_doubles_nothing() -> None:
    ticks = Ticks()
    fleet, runner = await fleet_with_runner(ticks)
    for _ in range(5):
        fleet.clock.advance(10)
        await fleet.heartbeat("a")
        await fleet.heartbeat("b", reachable=False)  # a status change on the way
        await runner.step()
    # The runner dies here with writes held; a new one resumes from the stored checkpoints.
    restarted = ProjectionRunner(fleet.store, write_behind_s=1.0, monotonic=ticks)
    await restarted.start()
    await restarted.catch_up()
    resumed = await fleet.dump()
    await restarted.rebuild()
    assert await fleet.dump() == resumed


async def test_server_events_are_never_held() -> None:
    ticks = Ticks()
    fleet, runner = await fleet_with_runner(ticks)
    await fleet.restart_server(clean=True, down_for_s=60)  # ServerStopped, ServerStarted
    await runner.step()
    assert await fleet.store.checkpoint("clients") == await fleet.store.head()


async def test_batches_projected_without_the_lease_are_stored_once_it_is_back() -> None:
    """An instance that loses the jobs lease (a store outage) projects into memory only; when
    it holds the lease again, the read models it stores miss nothing of what came meanwhile."""
    ticks = Ticks()
    fleet, runner = await fleet_with_runner(ticks)
    holding = False
    runner.may_persist = lambda: holding
    fleet.clock.advance(10)
    await fleet.heartbeat("a", reachable=False)  # degraded: uptime and timeline change
    await fleet.deregister("b")
    while await runner.step():
        pass
    await runner.persist_held()

    holding = True
    while await runner.step():
        pass
    await runner.persist_held()
    assert await fleet.dump() == await fresh_fold(fleet.store)
