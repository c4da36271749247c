"""Operation commands on the in-memory store: what they append, the cache, races, errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from obt.bootstrap import make_codec
from obt.commands.operations import OperationCommands, RequestOperation
from obt.domain.events import operation_stream
from obt.errors import InvalidOperation, UnknownOperation
from obt.store.memory import MemoryStore
from obt.store.sqlite import SQLiteStore
from tests.support.clock import FakeClock


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(make_codec())


def commands(store: MemoryStore, clock: FakeClock, name: str = "op1") -> OperationCommands:
    return OperationCommands(store, clock, server_id="s1", new_id=lambda: name)


def pull(hosts: list[str], max_parallel: int = 1) -> RequestOperation:
    return RequestOperation(
        action="pull",
        model="llama3.2:3b",
        targets=hosts,
        selector={"client_ids": hosts},
        max_parallel=max_parallel,
        expires_in_s=600,
        metadata={"source": "10.0.0.9", "user_agent": "test"},
    )


async def types(store: MemoryStore, name: str = "op1") -> list[str]:
    return [e.type for e in await store.read_stream(operation_stream(name))]


async def test_an_operation_runs_from_request_to_finished(store: MemoryStore) -> None:
    clock = FakeClock()
    ops = commands(store, clock)
    state = await ops.request(pull(["a", "b"]))
    assert (state.operation_id, sorted(state.targets)) == ("op1", ["a", "b"])
    assert await ops.start("op1", "a")
    assert not await ops.start("op1", "b")  # max_parallel 1
    await ops.progress("op1", "a", status="pulling", completed=1, total=9)
    await ops.progress("op1", "a", status="pulling", completed=2, total=9)  # within 5 s
    await ops.result("op1", "a", succeeded=True, reason=None)
    assert await ops.start("op1", "b")
    await ops.result("op1", "b", succeeded=False, reason="pull failed: disk full")
    assert await types(store) == [
        "OperationRequested",
        "OperationTargetStarted",
        "OperationTargetProgressed",
        "OperationTargetSucceeded",
        "OperationTargetStarted",
        "OperationTargetFailed",
        "OperationFinished",
    ]
    first = (await store.read_stream(operation_stream("op1")))[0]
    assert first.metadata == {"source": "10.0.0.9", "user_agent": "test", "server_id": "s1"}
    assert (await commands(store, clock).load("op1")).finished  # a fresh reader agrees


async def test_cancel_and_expiry_name_the_hosts_to_tell(store: MemoryStore) -> None:
    clock = FakeClock()
    ops = commands(store, clock)
    await ops.request(pull(["a", "b", "c"], max_parallel=2))
    await ops.start("op1", "a")
    assert await ops.cancel("op1") == ["a"]
    assert (await types(store))[-1] == "OperationFinished"
    other = commands(store, clock, "op2")
    await other.request(pull(["a", "b"], max_parallel=1))
    await other.start("op2", "b")
    assert await other.expire("op2") == []  # not yet
    clock.advance(600)
    assert await other.expire("op2") == ["b"]
    assert await other.expire("op2") == []  # once


async def test_two_servers_deciding_at_once_both_land(store: MemoryStore) -> None:
    clock = FakeClock()
    first, second = commands(store, clock), commands(store, clock)
    await first.request(pull(["a", "b"], max_parallel=2))
    await second.load("op1")  # cached, then left behind by the first
    await first.start("op1", "a")
    assert await second.start("op1", "b")  # conflict, reload, decide again
    state = await first.load("op1")
    assert {cid: t.state for cid, t in state.targets.items()} == {"a": "running", "b": "running"}


async def test_refusals_are_domain_errors_with_stable_codes(store: MemoryStore) -> None:
    ops = commands(store, FakeClock())
    with pytest.raises(InvalidOperation) as refused:
        await ops.request(
            RequestOperation(action="delete", model="phi3", targets=["a"], selector={"labels": {}})
        )
    assert refused.value.code == "explicit_targets_required"
    with pytest.raises(UnknownOperation):
        await ops.cancel("missing")
    assert await store.read_stream(operation_stream("op1")) == []


async def test_many_hosts_reporting_at_once_keep_the_cached_state_in_step_with_the_log(
    tmp_path: Path,
) -> None:
    """Agents' frames arrive on many channels at once; each is one writer of the stream. On
    SQLite an append awaits its writer thread, so the writers really interleave."""
    store = SQLiteStore(tmp_path / "obt.db")
    await store.open()
    try:
        await many_hosts_at_once(store)
    finally:
        await store.close()


async def many_hosts_at_once(store: SQLiteStore) -> None:
    clock = FakeClock()
    ops = OperationCommands(store, clock, server_id="s1", new_id=lambda: "op1")
    hosts = [f"h{i:02d}" for i in range(30)]
    await ops.request(pull(hosts, max_parallel=30))
    for host in hosts:
        await ops.start("op1", host)

    async def report(host: str) -> None:
        await ops.progress("op1", host, status="pulling manifest", completed=None, total=None)
        await ops.load("op1")  # the dispatcher reads while others append
        await ops.result("op1", host, succeeded=True, reason=None)

    await asyncio.gather(*(report(h) for h in hosts))
    state = await ops.load("op1")
    recorded = await store.read_stream(operation_stream("op1"))
    assert state.version == len(recorded)
    assert state.finished and state.count("succeeded") == len(hosts)
    assert recorded[-1].type == "OperationFinished"
