"""Property: for any valid history, incremental projection == rebuild == one fresh fold, on
every store; and a crash between batches double-applies nothing."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obt.bootstrap import make_codec
from obt.errors import DomainError
from obt.projections.base import Batch
from obt.projections.runner import ProjectionRunner, decode, default_projectors
from obt.store.memory import MemoryStore
from obt.store.ports import Store
from tests.support.fleet import Fleet

CLIENTS = st.sampled_from(["a", "b", "c"])
MODEL_SETS = st.dictionaries(
    st.sampled_from(["llama3", "qwen", "phi"]),
    st.sampled_from(["sha256:1", "sha256:2"]),
    max_size=3,
)
LOADED = st.dictionaries(st.sampled_from(["llama3", "qwen"]), st.integers(0, 3), max_size=2)
ACTION = st.one_of(
    st.tuples(st.just("register"), CLIENTS, st.booleans(), st.booleans()),
    st.tuples(st.just("heartbeat"), CLIENTS, st.booleans()),
    st.tuples(st.just("models"), CLIENTS, MODEL_SETS, LOADED),
    st.tuples(st.just("advance"), st.integers(1, 7200)),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("deregister"), CLIENTS),
    st.tuples(st.just("decommission"), CLIENTS),
    st.tuples(st.just("restart"), st.booleans(), st.integers(1, 5000)),
    st.tuples(st.just("project")),
    st.tuples(st.just("rule"), st.integers(0, 11)),
    st.tuples(st.just("change_rule"), st.integers(0, 3), st.integers(0, 11)),
    st.tuples(st.just("delete_rule"), st.integers(0, 3)),
    st.tuples(st.just("evaluate"), st.booleans()),
    st.tuples(st.just("evaluate"), st.booleans()),
    st.tuples(st.just("deliver"), st.sampled_from([None, "HTTP 503"])),
    st.tuples(st.just("open_channel"), CLIENTS),
    st.tuples(
        st.just("op_request"),
        st.lists(CLIENTS, min_size=1, max_size=3),
        st.integers(1, 2),
        st.sampled_from(["pull", "delete"]),
    ),
    st.tuples(st.just("op_start"), st.integers(0, 2), CLIENTS),
    st.tuples(
        st.just("op_progress"),
        st.integers(0, 2),
        CLIENTS,
        st.sampled_from(["pulling", "verifying"]),
        st.integers(0, 100),
    ),
    st.tuples(st.just("op_result"), st.integers(0, 2), CLIENTS, st.booleans()),
    st.tuples(st.just("op_cancel"), st.integers(0, 2)),
    st.tuples(st.just("op_expire"), st.integers(0, 2)),
    st.tuples(
        st.just("close_channel"),
        CLIENTS,
        st.sampled_from(["clean", "error", "idle", "server_stopping"]),
    ),
)
HISTORIES = st.lists(ACTION, min_size=1, max_size=30)


async def play(fleet: Fleet, actions: Sequence[tuple[Any, ...]]) -> None:
    for action in actions:
        name, *args = action
        try:
            match name:
                case "register":
                    await fleet.register(args[0], reachable=args[1], new_session=args[2])
                case "heartbeat":
                    await fleet.heartbeat(args[0], reachable=args[1])
                case "models":
                    await fleet.models(
                        args[0], args[1], {k: v for k, v in args[2].items() if k in args[1]}
                    )
                case "advance":
                    fleet.clock.advance(args[0])
                case "sweep":
                    await fleet.sweep()
                case "deregister":
                    await fleet.deregister(args[0])
                case "decommission":
                    await fleet.decommission(args[0])
                case "restart":
                    await fleet.restart_server(clean=args[0], down_for_s=args[1])
                case "project":
                    await fleet.runner.step()
                case "rule":
                    await fleet.create_rule(args[0])
                case "change_rule":
                    await fleet.change_rule(args[0], args[1])
                case "delete_rule":
                    await fleet.delete_rule(args[0])
                case "evaluate":
                    await fleet.evaluate(project=args[0])
                case "deliver":
                    await fleet.project()
                    await fleet.deliver(failing=args[0])
                case "open_channel":
                    await fleet.open_channel(args[0])
                case "op_request":
                    await fleet.request_operation(args[0], args[1], args[2])
                case "op_start":
                    await fleet.start_target(args[0], args[1])
                case "op_progress":
                    await fleet.report_progress(args[0], args[1], args[2], args[3])
                case "op_result":
                    await fleet.report_result(args[0], args[1], args[2])
                case "op_cancel":
                    await fleet.cancel_operation(args[0])
                case "op_expire":
                    await fleet.expire_operation(args[0])
                case "close_channel":
                    await fleet.close_channel(args[0], args[1])
        except (DomainError, KeyError):
            pass  # an action the rules refuse (unknown client, decommissioned): no events


async def fresh_fold(store: Store) -> dict[str, list[str]]:
    """Every event folded in one batch per projector into a brand-new read store."""
    records = await store.read_all(after=0, limit=10**9)
    target = MemoryStore(make_codec())
    for projector in default_projectors():
        batch = Batch()
        projector.apply_all(decode(records), batch)
        projector.flush(batch)
        await target.commit(
            projector.name,
            expected_checkpoint=0,
            new_checkpoint=records[-1].position,
            ops=batch.ops(),
        )
    return await Fleet(target).dump()


class SimulatedCrash(Exception):
    """The process died just before a read-model commit."""


class CrashingStore:
    """Delegates to a store, but the n-th read-model commit fails: a crash between batches."""

    def __init__(self, inner: Store, crash_at: int) -> None:
        self._inner = inner
        self._crash_at = crash_at
        self._commits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def commit(self, projection: str, **kwargs: Any) -> None:
        self._commits += 1
        if self._commits == self._crash_at:
            raise SimulatedCrash
        await self._inner.commit(projection, **kwargs)


async def step_until_crash(runner: ProjectionRunner) -> bool:
    """Step until the simulated crash; False when the history is too short to reach it."""
    try:
        while await runner.step():
            pass
    except SimulatedCrash:
        return True
    return False


async def check_history(store: Store, actions: Sequence[tuple[Any, ...]], crash_at: int) -> None:
    fleet = Fleet(store)
    await fleet.start()
    await play(fleet, actions)
    # A runner dies mid-way: its last commit never lands; a new one resumes from checkpoints.
    crashing = ProjectionRunner(CrashingStore(store, crash_at), batch_size=7)  # type: ignore[arg-type]
    await crashing.start()
    await step_until_crash(crashing)
    await fleet.project()
    restarted = ProjectionRunner(store, batch_size=5)
    await restarted.start()
    await restarted.catch_up()
    incremental = await fleet.dump()
    assert incremental == await Fleet(store).dump()
    await restarted.rebuild()
    rebuilt = await fleet.dump()
    assert rebuilt == incremental
    assert await fresh_fold(store) == incremental


Opener = Callable[[], Awaitable[Store]]


def run_property(
    open_store: Callable[[str], Awaitable[Store]],
    data: st.DataObject,
    histories: st.SearchStrategy[list[tuple[Any, ...]]] = HISTORIES,
) -> None:
    actions = data.draw(histories)
    crash_at = data.draw(st.integers(1, 6))

    async def main() -> None:
        store = await open_store(uuid.uuid4().hex[:12])
        try:
            await check_history(store, actions, crash_at)
        finally:
            await store.close()

    asyncio.run(main())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_projections_agree_on_memory(data: st.DataObject) -> None:
    async def open_store(_: str) -> Store:
        return MemoryStore(make_codec())

    run_property(open_store, data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_projections_agree_on_sqlite(data: st.DataObject) -> None:
    from obt.store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:

        async def open_store(_: str) -> Store:
            store = SQLiteStore(Path(tmp) / "obt.sqlite3", make_codec())
            await store.open()
            return store

        run_property(open_store, data)


@pytest.mark.mongodb
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_projections_agree_on_mongodb(secantus_uri: str, data: st.DataObject) -> None:
    from obt.store.mongodb import MongoStore

    async def open_store(name: str) -> Store:
        store = MongoStore(secantus_uri, f"prop_{name}", make_codec())
        await store.open()
        return store

    run_property(open_store, data)


# Histories that start with clients and every kind of alert rule, so that alerts fire, remind
# and resolve in most examples (random histories rarely line all that up).
ALERT_PREAMBLE: list[tuple[Any, ...]] = [
    ("register", "a", True, False),
    ("register", "b", False, False),
    *[("rule", variant) for variant in range(6)],
    ("deregister", "a"),
    ("advance", 120),
    ("evaluate", True),
]
ALERT_HISTORIES = st.lists(ACTION, min_size=5, max_size=30).map(lambda h: ALERT_PREAMBLE + h)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_alert_projections_agree_on_memory(data: st.DataObject) -> None:
    async def open_store(_: str) -> Store:
        return MemoryStore(make_codec())

    run_property(open_store, data, ALERT_HISTORIES)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_alert_projections_agree_on_sqlite(data: st.DataObject) -> None:
    from obt.store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:

        async def open_store(_: str) -> Store:
            store = SQLiteStore(Path(tmp) / "obt.sqlite3", make_codec())
            await store.open()
            return store

        run_property(open_store, data, ALERT_HISTORIES)
