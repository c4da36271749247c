"""The agent's transport against a real WebSocket server (the fake OBT server's channel), in
virtual time: the channel is preferred, HTTP takes over when the upgrade or the channel fails,
and no heartbeat's seq is ever lost on the way."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.backoff import Backoff
from agent.channel import FrameHandler
from agent.cli import channel_opener
from agent.clock import FakeClock
from agent.loop import AgentLoop, Identity
from agent.ollama import OllamaClient
from agent.server import ObtClient
from agent.state import StateDir
from agent.transport import AgentTransport, ChannelLike, ChannelOpener
from tests.fakes.obt_server import FakeObtServer
from tests.fakes.ollama import FakeOllama

CLIENT_ID = "gpu-01"
SESSION_ID = "3f1c9d2e-0000-4000-8000-000000000001"


def make_agent(
    obt: FakeObtServer,
    ollama: FakeOllama,
    session: aiohttp.ClientSession,
    state_dir: Path,
    channel: bool = True,
    ack_timeout_s: float = 10.0,
    clock: FakeClock | None = None,
    opener: ChannelOpener | None = None,
) -> tuple[AgentLoop, AgentTransport]:
    clock = clock or FakeClock()
    opener = opener or channel_opener(session, obt.base_url)
    transport = AgentTransport(
        ObtClient(obt.base_url, session),
        opener if channel else None,
        clock,
        Backoff(random.Random(3)),
        ack_timeout_s=ack_timeout_s,
    )
    identity = Identity(
        client_id=CLIENT_ID,
        session_id=SESSION_ID,
        hostname="gpu",
        platform={"system": "Linux", "release": "6.1", "machine": "x86_64"},
        agent_version="0.1.0",
        labels={},
        server_url=obt.base_url,
        ollama_base_url=ollama.base_url,
        ollama_installed=True,
    )
    loop = AgentLoop(
        identity=identity,
        enrollment_token=obt.enrollment_token,
        ollama=OllamaClient(ollama.base_url, session, timeout_s=2.0),
        server=transport,
        store=StateDir(state_dir),
        clock=clock,
        backoff=Backoff(random.Random(7)),
    )
    return loop, transport


class Running:
    """The loop as a task, stopped (and awaited) at the end of the block."""

    def __init__(self, loop: AgentLoop) -> None:
        self.stop = asyncio.Event()
        self.loop = loop
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.loop.run(self.stop))
        return self

    async def __aexit__(self, *_: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)


def seqs(obt: FakeObtServer) -> list[int]:
    return [int(h["seq"]) for h in obt.heartbeats]


def beats_via(obt: FakeObtServer, via: str) -> int:
    return obt.heartbeat_via.count(via)


async def test_prefers_the_channel_for_heartbeats_models_and_deregistration(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    loop, transport = make_agent(fake_obt, fake_ollama, session, tmp_path)
    async with Running(loop):
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "channel") >= 3)
        assert transport.state.kind == "channel"
    assert fake_obt.hellos == [{"type": "hello", "protocol": 1, "session_id": SESSION_ID}]
    assert set(fake_obt.heartbeat_via) == {"channel"}
    assert seqs(fake_obt) == list(range(1, len(fake_obt.heartbeats) + 1))
    kinds = [f["type"] for f in fake_obt.frames]
    assert kinds[:2] == ["heartbeat", "models"]  # the first beat is answered models_wanted
    assert kinds[-1] == "deregister"
    assert fake_obt.deregistrations == [CLIENT_ID]
    ids = [f["id"] for f in fake_obt.frames]
    assert len(set(ids)) == len(ids)
    await fake_obt.wait_until(lambda: not fake_obt.channels)  # closed once stopped


async def test_falls_back_to_http_when_the_upgrade_is_refused_and_tries_again_later(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    fake_obt.refuse_upgrade = 400  # a proxy that passes HTTP but not WebSockets
    loop, transport = make_agent(fake_obt, fake_ollama, session, tmp_path)
    async with Running(loop):
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "http") >= 3)
        assert transport.state.kind == "http"
        assert "the upgrade answered HTTP 400" in transport.state.reason
        fake_obt.refuse_upgrade = None  # the proxy learns WebSockets
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "channel") >= 2)
        assert transport.state.kind == "channel"
    assert seqs(fake_obt) == list(range(1, len(fake_obt.heartbeats) + 1))
    assert fake_obt.upgrades_refused >= 1
    assert fake_obt.channels_opened == 1


async def test_a_heartbeat_cut_off_before_its_ack_is_sent_again_with_the_same_seq(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    loop, _ = make_agent(fake_obt, fake_ollama, session, tmp_path)
    async with Running(loop):
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "channel") >= 2)
        fake_obt.cut_next_frames = 1
        cut_at = len(fake_obt.frames)
        await fake_obt.wait_until(lambda: fake_obt.channels_opened >= 2)
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "channel") >= 4)
    cut = fake_obt.frames[cut_at]
    assert cut["type"] == "heartbeat"
    # The frame the channel lost went again by HTTP, same body, same seq; nothing skipped.
    first_http = fake_obt.heartbeat_via.index("http")
    assert fake_obt.heartbeats[first_http] == cut["body"]
    assert seqs(fake_obt) == list(range(1, len(fake_obt.heartbeats) + 1))


async def test_a_stalled_channel_is_closed_and_its_heartbeat_sent_by_http(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    # The server takes the frame and never answers: after the ack timeout the agent gives
    # the channel up and the same heartbeat goes by HTTP.
    loop, _ = make_agent(fake_obt, fake_ollama, session, tmp_path, ack_timeout_s=0.3)
    async with Running(loop):
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "channel") >= 2)
        stalled_at = len(fake_obt.frames)
        fake_obt.stall_next_frames = 1
        await fake_obt.wait_until(lambda: "http" in fake_obt.heartbeat_via)
        await fake_obt.wait_until(lambda: fake_obt.channels_opened >= 2)
    stalled = fake_obt.frames[stalled_at]
    assert stalled["type"] == "heartbeat"
    assert fake_obt.close_codes[0] == 1011  # given up as an error, not a clean close
    first_http = fake_obt.heartbeat_via.index("http")
    assert fake_obt.heartbeats[first_http] == stalled["body"]
    assert seqs(fake_obt) == list(range(1, len(fake_obt.heartbeats) + 1))


@pytest.mark.parametrize(
    ("code", "reason"), [(4000, b"replaced"), (1001, b"server stopping"), (4001, b"idle")]
)
async def test_a_closed_channel_is_opened_again_after_a_back_off(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    code: int,
    reason: bytes,
) -> None:
    loop, transport = make_agent(fake_obt, fake_ollama, session, tmp_path)
    async with Running(loop):
        await fake_obt.wait_until(lambda: CLIENT_ID in fake_obt.channels)
        await fake_obt.close_channel(CLIENT_ID, code, reason)
        await fake_obt.wait_until(lambda: fake_obt.channels_opened >= 2)
        await fake_obt.wait_until(lambda: transport.state.kind == "channel")
    assert seqs(fake_obt) == list(range(1, len(fake_obt.heartbeats) + 1))
    assert len(fake_obt.registrations) == 1  # a closed channel is no reason to register


@pytest.mark.parametrize(
    ("failure", "registrations"),
    [
        ((401, {}, "invalid_credentials"), 2),
        ((404, {}, "unknown_client"), 2),
        ((409, {}, "client_stopped"), 2),
        ((409, {}, "stale_seq"), 1),
        ((503, {}, "store_unavailable"), 1),
    ],
)
async def test_error_acks_are_handled_as_the_same_http_answers_are(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    failure: tuple[int, dict[str, str], str],
    registrations: int,
) -> None:
    loop, _ = make_agent(fake_obt, fake_ollama, session, tmp_path)
    async with Running(loop):
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "channel") >= 2)
        before = len(fake_obt.heartbeats)
        fake_obt.fail_next.append(failure)
        await fake_obt.wait_until(lambda: len(fake_obt.heartbeats) >= before + 3)
    assert len(fake_obt.registrations) == registrations
    if failure[0] == 401:  # the secret was forgotten: enrolled again with the token
        assert fake_obt.registrations[1]["_issued"]


async def test_commands_from_the_server_reach_the_handler(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    loop, transport = make_agent(fake_obt, fake_ollama, session, tmp_path)
    received: list[dict[str, Any]] = []
    transport.on_command = received.append
    command = {"type": "command", "operation_id": "op-1", "action": "pull", "model": "phi4:14b"}
    cancel = {"type": "cancel", "operation_id": "op-1"}

    async def until(predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not predicate():
                await asyncio.sleep(0.01)

    async with Running(loop):
        await fake_obt.wait_until(lambda: CLIENT_ID in fake_obt.channels)
        await fake_obt.send_to_agent(CLIENT_ID, command)
        await fake_obt.send_to_agent(CLIENT_ID, {"type": "error", "status": 422, "body": {}})
        await fake_obt.send_to_agent(CLIENT_ID, cancel)
        await until(lambda: len(received) == 2)
    assert received == [command, cancel]


async def test_results_wait_for_a_channel_and_progress_does_not(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    fake_obt.refuse_upgrade = 404
    loop, transport = make_agent(fake_obt, fake_ollama, session, tmp_path)
    progress = {"type": "progress", "operation_id": "op-1", "body": {"status": "x"}}
    result = {"type": "result", "operation_id": "op-1", "body": {"status": "succeeded"}}
    async with Running(loop):
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "http") >= 1)
        assert not await transport.send_operation_frame(progress, False)
        assert not await transport.send_operation_frame(result, True)
        fake_obt.refuse_upgrade = None
        await fake_obt.wait_until(lambda: result in fake_obt.frames)
    assert progress not in fake_obt.frames


async def test_http_only_never_tries_the_channel(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    loop, transport = make_agent(fake_obt, fake_ollama, session, tmp_path, channel=False)
    async with Running(loop):
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "http") >= 3)
    assert fake_obt.channels_opened == 0
    assert fake_obt.upgrades_refused == 0
    assert transport.state.kind == "http"
    assert fake_obt.deregistrations == [CLIENT_ID]


async def test_deregisters_over_http_when_the_server_has_no_deregister_frame(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    fake_obt.deregister_frames = False
    loop, _ = make_agent(fake_obt, fake_ollama, session, tmp_path)
    async with Running(loop):
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "channel") >= 1)
    assert fake_obt.deregistrations == [CLIENT_ID]
    assert fake_obt.frames[-1]["type"] == "deregister"  # tried, refused 422, then HTTP


async def test_odd_frames_and_a_failing_handler_do_not_end_the_channel(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    loop, transport = make_agent(fake_obt, fake_ollama, session, tmp_path)

    def broken(frame: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    transport.on_command = broken
    async with Running(loop):
        await fake_obt.wait_until(lambda: CLIENT_ID in fake_obt.channels)
        for odd in (
            {"type": "ack", "id": [1], "status": 200},
            {"type": "ack", "id": 99999, "status": 200},
            {"type": "command", "operation_id": "op-1", "action": "pull", "model": "x"},
            {"type": "welcome", "protocol": 1},
            ["not", "an", "object"],
        ):
            await fake_obt.channels[CLIENT_ID].send_json(odd)
        await fake_obt.channels[CLIENT_ID].send_str("{not json")
        before = beats_via(fake_obt, "channel")
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "channel") >= before + 3)
    assert fake_obt.channels_opened == 1
    assert set(fake_obt.heartbeat_via) == {"channel"}


async def test_upgrade_retries_back_off_with_jitter_up_to_a_minute(
    fake_obt: FakeObtServer,
    fake_ollama: FakeOllama,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    fake_obt.refuse_upgrade = 404  # forever: a server without the channel
    clock = FakeClock()
    opener = channel_opener(session, fake_obt.base_url)
    tries: list[float] = []

    async def counting(
        client_id: str, secret: str, session_id: str, on_frame: FrameHandler
    ) -> ChannelLike:
        tries.append(clock.monotonic())
        return await opener(client_id, secret, session_id, on_frame)

    loop, transport = make_agent(
        fake_obt, fake_ollama, session, tmp_path, clock=clock, opener=counting
    )
    async with Running(loop):
        # 150 heartbeats at 10 s: 25 minutes of virtual time.
        await fake_obt.wait_until(lambda: beats_via(fake_obt, "http") >= 150, timeout=30)
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert gaps[0] == 10.0  # the first back-off (0.5-1 s) has passed by the next beat
    assert max(gaps) <= 60.0 + 10.0  # capped at 60 s, tried at the first beat after it
    assert max(gaps) >= 40.0  # it did grow
    assert len(tries) < 50
    assert fake_obt.upgrades_refused == len(tries)
    assert transport.state.kind == "http"
