"""The operation dispatcher on the real commands, projector and in-memory store, with an
in-memory AgentLink standing in for the agent channels (the channel has its own tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from obt.bootstrap import make_codec
from obt.commands.agent_link import FrameHandler
from obt.commands.operations import RequestOperation
from obt.errors import AgentNotConnected
from obt.jobs.operations import OperationDispatcher, operation_dispatcher
from obt.projections.operations import OPERATIONS
from obt.store.memory import MemoryStore
from tests.support.fleet import Fleet


class MemoryLink:
    def __init__(self, *connected: str) -> None:
        self.online = set(connected)
        self.frames: list[tuple[str, dict[str, Any]]] = []
        self.handlers: list[FrameHandler] = []

    def connected(self, client_id: str) -> bool:
        return client_id in self.online

    async def send(self, client_id: str, frame: Mapping[str, Any]) -> None:
        if client_id not in self.online:
            raise AgentNotConnected(client_id)
        self.frames.append((client_id, dict(frame)))

    def subscribe(self, handler: FrameHandler) -> None:
        self.handlers.append(handler)

    async def agent_says(self, client_id: str, frame: dict[str, Any]) -> None:
        for handler in self.handlers:
            await handler(client_id, frame)

    def commands(self) -> list[tuple[str, str]]:
        return [(cid, f["operation_id"]) for cid, f in self.frames if f["type"] == "command"]


async def setup(*connected: str) -> tuple[Fleet, OperationDispatcher, MemoryLink]:
    fleet = Fleet(MemoryStore(make_codec()))
    await fleet.start()
    dispatcher = operation_dispatcher(fleet.operations, fleet.clock, fleet.runner)
    link = MemoryLink(*connected)
    dispatcher.attach(link)
    return fleet, dispatcher, link


async def tick(fleet: Fleet, dispatcher: OperationDispatcher) -> int:
    await fleet.project()
    done = await dispatcher.run_once()
    await fleet.project()
    return done


async def result(link: MemoryLink, cid: str, op: str, status: str = "succeeded") -> None:
    reason = None if status == "succeeded" else "pull model manifest: file does not exist"
    body = {"status": status, "reason": reason}
    await link.agent_says(cid, {"type": "result", "operation_id": op, "body": body})


async def doc(fleet: Fleet, op: str) -> dict[str, Any]:
    return next(d for d in await fleet.store.find(OPERATIONS) if d["id"] == op)


async def test_at_most_max_parallel_hosts_run_and_the_next_starts_when_one_ends() -> None:
    fleet, dispatcher, link = await setup("a", "b", "c")
    await fleet.request_operation(["a", "b", "c"], 2, "pull")
    assert await tick(fleet, dispatcher) == 2
    assert link.commands() == [("a", "op1"), ("b", "op1")]
    assert link.frames[0][1] == {
        "type": "command",
        "operation_id": "op1",
        "action": "pull",
        "model": "llama3.2:3b",
    }
    await tick(fleet, dispatcher)
    assert len(link.commands()) == 2  # nothing sent twice, nothing more started
    await link.agent_says(
        "a",
        {
            "type": "progress",
            "operation_id": "op1",
            "body": {"status": "pulling abc", "digest": None, "completed": 5, "total": 10},
        },
    )
    await result(link, "a", "op1")
    await tick(fleet, dispatcher)
    assert link.commands()[-1] == ("c", "op1")
    await result(link, "b", "op1", "failed")
    await result(link, "c", "op1")
    await tick(fleet, dispatcher)
    found = await doc(fleet, "op1")
    assert found["finished_at"] is not None
    assert {k: v for k, v in found["counts"].items() if v} == {"succeeded": 2, "failed": 1}
    assert found["targets"]["b"]["reason"] == "pull model manifest: file does not exist"


async def test_a_queued_host_starts_when_it_connects_and_one_operation_runs_per_host() -> None:
    fleet, dispatcher, link = await setup("a")
    await fleet.request_operation(["a", "b"], 4, "pull")
    await fleet.request_operation(["a"], 4, "delete")
    await tick(fleet, dispatcher)
    assert link.commands() == [("a", "op1")]  # b is offline; op2 waits for a
    link.online.add("b")
    await tick(fleet, dispatcher)
    assert link.commands() == [("a", "op1"), ("b", "op1")]
    await result(link, "a", "op1")
    await tick(fleet, dispatcher)
    assert link.commands()[-1] == ("a", "op2")
    assert link.frames[-1][1]["action"] == "delete"


async def test_a_host_that_comes_back_is_sent_its_running_command_again() -> None:
    fleet, dispatcher, link = await setup("a")
    await fleet.request_operation(["a"], 4, "pull")
    await tick(fleet, dispatcher)
    link.online.discard("a")
    await tick(fleet, dispatcher)
    link.online.add("a")
    await tick(fleet, dispatcher)
    assert link.commands() == [("a", "op1"), ("a", "op1")]
    assert (await doc(fleet, "op1"))["targets"]["a"]["state"] == "running"


async def test_past_its_expiry_what_is_left_expires_and_running_agents_are_told() -> None:
    fleet, dispatcher, link = await setup("a")
    await fleet.operations.request(
        RequestOperation(
            action="pull",
            model="llama3.2:3b",
            targets=["a", "b"],
            selector={"client_ids": ["a", "b"]},
            expires_in_s=60,
        )
    )
    await tick(fleet, dispatcher)
    fleet.clock.advance(61)
    await tick(fleet, dispatcher)
    assert link.frames[-1] == ("a", {"type": "cancel", "operation_id": "op1"})
    found = await doc(fleet, "op1")
    assert found["counts"]["expired"] == 2
    assert found["finished_at"] is not None
    link.online.add("b")
    await tick(fleet, dispatcher)
    assert link.commands() == [("a", "op1")]  # an expired host is never started


async def test_frames_for_unknown_operations_or_without_a_body_are_dropped() -> None:
    fleet, _dispatcher, link = await setup("a")
    await link.agent_says("a", {"type": "result", "operation_id": "nope", "body": {}})
    await link.agent_says("a", {"type": "progress", "operation_id": "nope"})
    await fleet.project()
    assert await fleet.store.find(OPERATIONS) == []
