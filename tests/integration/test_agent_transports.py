"""The real agent process on both transports against the real server process: the channel
when it opens, HTTP through a proxy that refuses WebSockets (and the channel again once the
proxy passes them), a channel cut mid-stream, a channel replaced by another, and a server
that stops and starts again. Throughout, no heartbeat's seq goes missing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.integration.simulated_agent import all_events
from tests.support.agent_proxy import AgentProxy
from tests.support.processes import (
    AgentProcess,
    FakeOllamaProcess,
    Launcher,
    ServerProcess,
    wait_until,
)

CLIENT_ID = "agent-ch-1"
WAIT_S = 30.0


@dataclass
class Stack:
    server: ServerProcess
    ollama: FakeOllamaProcess
    agent: AgentProcess
    http: httpx.Client
    proxy: AgentProxy | None

    def events(self, type_: str) -> list[dict[str, Any]]:
        return all_events(self.http, type=type_, stream=f"client-{CLIENT_ID}")

    def wait_events(self, type_: str, count: int, what: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = wait_until(
            lambda: (events := self.events(type_)) and len(events) >= count and events,
            WAIT_S,
            lambda: f"{what}: {len(self.events(type_))} {type_}\n{self.agent.output(30)}",
        )
        return found

    def status(self) -> str | None:
        response = self.http.get(f"/clients/{CLIENT_ID}")
        return response.json()["status"] if response.status_code == 200 else None

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.agent.logs if p.exists())

    def sent_via(self, via: str) -> int:
        return self.log().count(f"via={via}")

    def wait_sent(self, via: str, count: int) -> None:
        wait_until(
            lambda: self.sent_via(via) >= count,
            WAIT_S,
            lambda: f"fewer than {count} heartbeats via {via}\n{self.agent.output(30)}",
        )

    def seqs(self) -> dict[str, list[int]]:
        beats = self.events("HeartbeatReceived")
        by_session: dict[str, list[int]] = {}
        for beat in beats:
            by_session.setdefault(beat["data"]["session_id"], []).append(beat["data"]["seq"])
        return by_session

    def assert_no_seq_lost(self) -> None:
        """Every seq recorded, in order, once: a change of transport loses nothing."""
        for seqs in self.seqs().values():
            assert seqs == list(range(1, len(seqs) + 1)), seqs


def make_stack(
    tmp_path: Path, launch: Launcher, proxy: AgentProxy | None, env: dict[str, str] | None = None
) -> Iterator[Stack]:
    server = ServerProcess(tmp_path / "data", log_dir=tmp_path / "logs")
    ollama = FakeOllamaProcess(tmp_path / "logs")
    launch.together(server, ollama)
    if proxy is not None:
        proxy.target = server.base_url
        proxy.start()
    try:
        agent = launch(
            AgentProcess(
                tmp_path / "logs",
                server_url=proxy.base_url if proxy else server.base_url,
                ollama_url=ollama.base_url,
                enrollment_token=server.enrollment_token,
                client_id=CLIENT_ID,
                env=env,
            )
        )
        with server.client() as http:
            yield Stack(server, ollama, agent, http, proxy)
    finally:
        if proxy is not None:
            agent_process = next((p for p in launch.launched if p.name == "agent"), None)
            if agent_process is not None:
                agent_process.stop()  # deregister through the proxy before it goes
            proxy.stop()


@pytest.fixture
def stack(tmp_path: Path, launch: Launcher) -> Iterator[Stack]:
    yield from make_stack(tmp_path, launch, None)


@pytest.fixture
def proxied(tmp_path: Path, launch: Launcher) -> Iterator[Stack]:
    yield from make_stack(tmp_path, launch, AgentProxy("http://unset", refuse=None))


@pytest.fixture
def refusing(tmp_path: Path, launch: Launcher) -> Iterator[Stack]:
    yield from make_stack(tmp_path, launch, AgentProxy("http://unset", refuse=400))


def test_the_agent_prefers_the_channel_and_deregisters_over_it(stack: Stack) -> None:
    [opened] = stack.wait_events("ChannelOpened", 1, "the agent should open its channel")
    stack.wait_sent("channel", 3)
    wait_until(lambda: stack.status() == "online", WAIT_S, "the client should be online")
    assert stack.sent_via("http") == 0
    assert "event=transport kind=channel" in stack.log()
    stack.agent.stop()
    [closed] = stack.wait_events("ChannelClosed", 1, "the channel should close")
    assert closed["data"]["channel_id"] == opened["data"]["channel_id"]
    assert closed["data"]["reason"] == "clean"
    assert stack.events("ClientDeregistered")
    assert stack.status() == "stopped"
    stack.assert_no_seq_lost()


def test_http_only_agents_never_open_a_channel(tmp_path: Path, launch: Launcher) -> None:
    for stack in make_stack(tmp_path, launch, None, {"OBT_AGENT_TRANSPORT": "http"}):
        stack.wait_sent("http", 3)
        assert stack.events("ChannelOpened") == []
        assert stack.status() == "online"


def test_a_proxy_without_websockets_means_http_until_it_passes_them(refusing: Stack) -> None:
    stack = refusing
    assert stack.proxy is not None
    stack.wait_sent("http", 3)
    wait_until(lambda: stack.status() == "online", WAIT_S, "online over HTTP")
    assert stack.events("ChannelOpened") == []
    assert stack.proxy.upgrades_refused >= 1
    assert "the upgrade answered HTTP 400" in stack.log()
    stack.proxy.refuse = None  # the proxy now passes WebSockets: the agent comes over
    stack.wait_events("ChannelOpened", 1, "the agent should try the channel again")
    before = stack.sent_via("channel")
    stack.wait_sent("channel", before + 2)
    stack.assert_no_seq_lost()
    assert stack.events("ClientTimedOut") == []


def test_a_channel_cut_mid_stream_loses_no_heartbeat(proxied: Stack) -> None:
    stack = proxied
    assert stack.proxy is not None
    stack.wait_events("ChannelOpened", 1, "the agent should open its channel")
    stack.wait_sent("channel", 3)
    assert stack.proxy.cut() == 1
    [closed] = stack.wait_events("ChannelClosed", 1, "the cut should close the channel")
    assert closed["data"]["reason"] == "error"
    stack.wait_events("ChannelOpened", 2, "the agent should open a new channel")
    before = stack.sent_via("channel")
    stack.wait_sent("channel", before + 2)
    stack.assert_no_seq_lost()
    assert stack.events("ClientTimedOut") == []
    assert stack.status() == "online"


def test_a_replaced_channel_is_opened_again_after_a_back_off(stack: Stack) -> None:
    [first] = stack.wait_events("ChannelOpened", 1, "the agent should open its channel")
    # The same session again, as the agent's own reconnect over a half-open connection does.
    session_id = first["data"]["session_id"]
    secret = json.loads((stack.agent.state_dir / "secret.json").read_text())["client_secret"]
    url = stack.server.base_url.replace("http://", "ws://") + f"/api/v1/agents/{CLIENT_ID}/channel"
    with connect(url, additional_headers={"Authorization": f"Bearer {secret}"}) as other:
        other.send(json.dumps({"type": "hello", "protocol": 1, "session_id": session_id}))
        welcome = json.loads(other.recv(timeout=10))
        assert welcome["type"] == "welcome", welcome
        stack.wait_events("ChannelClosed", 1, "the agent's channel should be replaced")
        assert stack.events("ChannelClosed")[0]["data"]["reason"] == "replaced"
        # The agent comes back (after its back-off) and replaces the other channel in turn.
        with pytest.raises(ConnectionClosed) as closed:
            _drain(other)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4000
    opened = stack.wait_events("ChannelOpened", 3, "the agent should open its channel again")
    assert opened[-1]["data"]["session_id"] == session_id
    stack.assert_no_seq_lost()


def test_a_server_stop_closes_the_channel_and_the_agent_comes_back(stack: Stack) -> None:
    stack.wait_events("ChannelOpened", 1, "the agent should open its channel")
    stack.wait_sent("channel", 2)
    stack.server.restart()
    [closed] = stack.wait_events("ChannelClosed", 1, "the stop should close the channel")
    assert closed["data"]["reason"] == "server_stopping"
    stack.wait_events("ChannelOpened", 2, "the agent should open a channel to the new server")
    wait_until(lambda: stack.status() == "online", WAIT_S, "online again")
    assert "server stopping" in stack.log()
    # Beats sent while no server listened are gone (as on HTTP); the rest arrive in order.
    [seqs] = stack.seqs().values()
    assert seqs == sorted(set(seqs))


def _drain(channel: ClientConnection) -> None:
    """Read until the server closes the channel (ConnectionClosed) or WAIT_S pass."""
    while True:
        channel.recv(timeout=WAIT_S)
