"""The agent channel against a real `obt serve`: a WebSocket client in the test speaks the
frames an agent speaks. Upgrade credentials, hello/welcome, acks equal to the HTTP answers,
bad and oversize frames, replacement, the idle close, shutdown, and the events in the log."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from obt.api.app import create_app
from obt.api.channel import ChannelShortcut
from obt.api.channel_registry import ChannelRegistry
from obt.api.middleware import Edge
from obt.errors import AgentBusy, AgentNotConnected
from obt.settings import load_settings
from tests.integration.simulated_agent import all_events
from tests.support.processes import Launcher, ServerProcess, wait_until

RECV_TIMEOUT_S = 10.0
ENROLL = "enroll-" + "e" * 32


class Agent:
    """A registered client and what it needs to open channels."""

    def __init__(self, server: ServerProcess, client_id: str) -> None:
        self.server = server
        self.client_id = client_id
        self.session = str(uuid.uuid4())
        self.seq = 0
        r = httpx.post(
            f"{server.api_url}/agents/register",
            json={"client_id": client_id, "hostname": client_id, "session_id": self.session},
            headers={"Authorization": f"Bearer {server.enrollment_token}"},
        )
        r.raise_for_status()
        self.secret: str = r.json()["client_secret"]

    def url(self, client_id: str | None = None) -> str:
        cid = client_id or self.client_id
        return f"ws://127.0.0.1:{self.server.port}/api/v1/agents/{cid}/channel"

    def connect(self, token: str | None = None) -> ClientConnection:
        headers = {"Authorization": f"Bearer {token or self.secret}"}
        return connect(
            self.url(), additional_headers=headers, open_timeout=RECV_TIMEOUT_S, legacy=True
        )

    def open(self) -> tuple[ClientConnection, dict[str, Any]]:
        """Connected and greeted: the channel and its welcome."""
        ws = self.connect()
        send(ws, {"type": "hello", "protocol": 1, "session_id": self.session})
        return ws, receive(ws)

    def beat(self, seq: int | None = None, **changes: Any) -> dict[str, Any]:
        if seq is None:
            self.seq += 1
            seq = self.seq
        body = {"seq": seq, "session_id": self.session, "ollama": {"reachable": True}}
        return {**body, **changes}


def send(ws: ClientConnection, frame: Any) -> None:
    ws.send(frame if isinstance(frame, str) else json.dumps(frame))


def receive(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(ws.recv(timeout=RECV_TIMEOUT_S))
    return frame


def request(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    send(ws, frame)
    return receive(ws)


def closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Read until the server closes the channel; its close code and reason."""
    try:
        while True:
            ws.recv(timeout=RECV_TIMEOUT_S)
    except ConnectionClosed as closed:
        frame = closed.rcvd
        return (frame.code, frame.reason) if frame else (None, None)


def channel_events(server: ServerProcess, client_id: str) -> list[dict[str, Any]]:
    with server.client() as http:
        return [
            e
            for e in all_events(http, stream=f"client-{client_id}")
            if e["type"].startswith("Channel")
        ]


def wait_for_channel_events(
    server: ServerProcess, client_id: str, count: int
) -> list[dict[str, Any]]:
    return wait_until(
        lambda: (found := channel_events(server, client_id)) and len(found) >= count and found,
        10,
        lambda: f"channel events of {client_id}: {channel_events(server, client_id)}",
    )


def client_doc_when(
    server: ServerProcess, client_id: str, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The client's read-model document once it shows what the log already holds (the
    projections follow the log a moment behind the acknowledgement)."""

    def fetch() -> dict[str, Any]:
        with server.client() as http:
            answer = http.get(f"/clients/{client_id}")
        return answer.json() if answer.status_code == 200 else {}

    return wait_until(
        lambda: (doc := fetch()) and ready(doc) and doc,
        10,
        lambda: f"client {client_id} as read: {fetch()}",
    )


def comparable(status: int, body: Any) -> tuple[int, Any]:
    if status == 200 and isinstance(body, dict) and "server_time" in body:
        body = {k: v for k, v in body.items() if k != "server_time"}
    if isinstance(body, dict) and "code" in body:
        return status, body["code"]
    return status, body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the tests that neither stop it nor wait for idle closes."""
    process = ServerProcess(
        tmp_path_factory.mktemp("channel") / "data",
        interval_s=5.0,
        timeout_s=60.0,
        env={"OBT_MAX_BODY_BYTES": "8192"},
    )
    with process.serving():
        yield process


def test_the_upgrade_is_refused_as_http_refuses_the_credentials(server: ServerProcess) -> None:
    agent = Agent(server, "refused")
    other = Agent(server, "other")

    def upgrade(url: str, token: str | None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers, open_timeout=RECV_TIMEOUT_S, legacy=True)
        response = refused.value.response
        return response.status_code, json.loads(response.body or b"{}")["code"]

    def heartbeat(cid: str, token: str | None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = httpx.post(
            f"{server.api_url}/agents/{cid}/heartbeats", json=agent.beat(1), headers=headers
        )
        return r.status_code, r.json()["code"]

    cases = [
        (agent.client_id, None),
        (agent.client_id, server.enrollment_token),
        (agent.client_id, other.secret),
        (agent.client_id, "not-a-secret-of-anyone"),
        ("never-registered", agent.secret),
    ]
    for cid, token in cases:
        assert upgrade(agent.url(cid), token) == heartbeat(cid, token)
    assert upgrade(agent.url("x" * 65), agent.secret)[0] == 422
    assert [code for code, _ in (upgrade(agent.url(c), t) for c, t in cases)] == [
        401,
        403,
        403,
        401,
        403,
    ]


def test_hello_welcome_and_acks_equal_to_the_http_answers(server: ServerProcess) -> None:
    over_http = Agent(server, "http-twin")
    over_channel = Agent(server, "channel-twin")
    models = {
        "models": [{"name": "llama3:8b", "digest": "sha256:" + "a" * 64, "size": 1}],
        "loaded": [],
    }
    twice = {"models": models["models"] * 2, "loaded": []}
    # (frame type, body) in order; each answered over HTTP and over the channel.
    script: list[tuple[str, Any]] = [
        ("heartbeat", {"seq": 1}),
        ("heartbeat", {"seq": 1}),  # the same seq again: acknowledged once
        ("heartbeat", {"seq": 0}),  # older: 409 stale_seq
        ("heartbeat", {"seq": "x"}),  # 422
        ("heartbeat", {"seq": 2, "session_id": "someone-else-entirely"}),  # 409
        ("models", models),
        ("models", twice),  # 422: listed twice
        ("models", {"models": "nope"}),  # 422
        ("heartbeat", {"seq": 3}),
        ("deregister", None),
        ("heartbeat", {"seq": 4}),  # 409 client_stopped
    ]

    def http_answer(agent: Agent, kind: str, body: Any) -> tuple[int, Any]:
        auth = {"Authorization": f"Bearer {agent.secret}"}
        base = f"{server.api_url}/agents/{agent.client_id}"
        if kind == "heartbeat":
            r = httpx.post(f"{base}/heartbeats", json=agent.beat(**body), headers=auth)
        elif kind == "models":
            r = httpx.put(f"{base}/models", json=body, headers=auth)
        else:
            r = httpx.post(f"{base}/deregister", headers=auth)
        return comparable(r.status_code, r.json() if r.content else None)

    expected = [http_answer(over_http, kind, body) for kind, body in script]
    ws, welcome = over_channel.open()
    with ws:
        assert welcome == {
            "type": "welcome",
            "protocol": 1,
            "heartbeat_interval_s": 5.0,
            "timeout_s": 60.0,
            "channel_id": welcome["channel_id"],
        }
        got = []
        for frame_id, (kind, body) in enumerate(script, start=1):
            payload = over_channel.beat(**body) if kind == "heartbeat" else body
            ack = request(ws, {"type": kind, "id": frame_id, "body": payload})
            assert (ack["type"], ack["id"]) == ("ack", frame_id)
            got.append(comparable(ack["status"], ack["body"]))
    assert got == expected
    assert [status for status, _ in got] == [200, 200, 409, 422, 409, 200, 422, 422, 200, 204, 409]
    opened, closed = wait_for_channel_events(server, "channel-twin", 2)
    assert opened["type"] == "ChannelOpened"
    assert opened["data"]["session_id"] == over_channel.session
    assert opened["data"]["remote"].startswith("127.0.0.1:")
    assert (closed["type"], closed["data"]["reason"]) == ("ChannelClosed", "clean")
    assert closed["data"]["channel_id"] == opened["data"]["channel_id"] == welcome["channel_id"]


def test_bad_frames_are_answered_and_the_channel_stays_open(server: ServerProcess) -> None:
    agent = Agent(server, "sloppy")
    ws, _ = agent.open()
    with ws:
        answers = [
            request(ws, frame)
            for frame in (
                "not json",
                "[1, 2]",
                {"no": "type"},
                {"type": "heartbeat", "body": agent.beat()},  # no id to acknowledge
                {"type": "teleport", "id": 7},
                {"type": "hello", "id": 8, "protocol": 1, "session_id": agent.session},
                {"type": "heartbeat", "id": True, "body": agent.beat()},
                {"type": "progress", "body": {}},  # no operation_id
            )
        ]
        for answer in answers:
            assert answer["status"] == 422
            assert answer["body"]["code"] in ("invalid_json", "invalid_frame")
        assert [a["type"] for a in answers] == ["error"] * 4 + ["ack"] * 2 + ["error"] * 2
        assert [a.get("id") for a in answers[4:6]] == [7, 8]
        ack = request(ws, {"type": "heartbeat", "id": 9, "body": agent.beat()})
        assert (ack["status"], ack["body"]["status"]) == (200, "online")


def test_a_frame_over_the_body_limit_closes_the_channel_with_1009(server: ServerProcess) -> None:
    agent = Agent(server, "oversize")
    ws, _ = agent.open()
    with ws:
        beat = agent.beat(ollama={"reachable": False, "error": "x" * 9000})
        send(ws, {"type": "heartbeat", "id": 1, "body": beat})
        assert closed_with(ws)[0] == 1009
    _, closed = wait_for_channel_events(server, "oversize", 2)
    assert (closed["data"]["reason"], closed["data"]["code"]) == ("error", 1009)
    doc = client_doc_when(server, "oversize", lambda d: d.get("last_disconnect") is not None)
    assert doc["connection_lost"] is True  # at once; the status still follows the timeout
    assert doc["status"] == "degraded"  # as registered (Ollama not reachable)
    assert doc["last_disconnect"]["reason"] == "error"


def test_a_new_channel_replaces_the_old_one(server: ServerProcess) -> None:
    agent = Agent(server, "twice")
    first, first_welcome = agent.open()
    second, second_welcome = agent.open()
    with first, second:
        assert closed_with(first) == (4000, "replaced")
        ack = request(second, {"type": "heartbeat", "id": 1, "body": agent.beat()})
        assert ack["status"] == 200
        events = wait_for_channel_events(server, "twice", 3)
        assert [(e["type"], e["data"]["channel_id"]) for e in events] == [
            ("ChannelOpened", first_welcome["channel_id"]),
            ("ChannelClosed", first_welcome["channel_id"]),
            ("ChannelOpened", second_welcome["channel_id"]),
        ]
        assert events[1]["data"]["reason"] == "replaced"
        doc = client_doc_when(server, "twice", lambda d: d.get("status") == "online")
        assert (doc["transport"], doc["reconnects_24h"]) == ("channel", 1)


def test_a_channel_is_refused_for_a_session_that_is_not_the_registered_one(
    server: ServerProcess,
) -> None:
    agent = Agent(server, "impostor")
    with agent.connect() as ws:
        send(ws, {"type": "hello", "protocol": 1, "session_id": str(uuid.uuid4())})
        error = receive(ws)
        assert (error["type"], error["status"], error["body"]["code"]) == (
            "error",
            409,
            "session_mismatch",
        )
        assert closed_with(ws)[0] == 1008
    assert channel_events(server, "impostor") == []


def test_a_silent_channel_is_closed_as_idle_past_the_timeout(
    tmp_path: Path, launch: Launcher
) -> None:
    server = launch(ServerProcess(tmp_path / "data", interval_s=1.0, timeout_s=3.0))
    agent = Agent(server, "quiet")
    ws, _ = agent.open()
    with ws:
        assert closed_with(ws) == (4001, "idle")
    _, closed = wait_for_channel_events(server, "quiet", 2)
    assert closed["data"]["reason"] == "idle"


def test_shutdown_closes_every_channel_with_server_stopping_before_the_store(
    tmp_path: Path, launch: Launcher
) -> None:
    server = launch(ServerProcess(tmp_path / "data", interval_s=5.0, timeout_s=60.0))
    agents = [Agent(server, f"stop-{i}") for i in range(3)]
    channels = [agent.open()[0] for agent in agents]
    for agent, ws in zip(agents, channels, strict=True):
        assert request(ws, {"type": "heartbeat", "id": 1, "body": agent.beat()})["status"] == 200
    server.stop_cleanly()
    for ws in channels:
        with ws:
            assert closed_with(ws) == (1001, "server stopping")
    server.start()
    with server.client() as http:
        log = all_events(http)
        docs = {a.client_id: http.get(f"/clients/{a.client_id}").json() for a in agents}
    stopped = next(e["position"] for e in log if e["type"] == "ServerStopped")
    for agent in agents:
        ends = [
            e
            for e in log
            if e["type"] == "ChannelClosed" and e["stream"] == f"client-{agent.client_id}"
        ]
        assert [e["data"]["reason"] for e in ends] == ["server_stopping"]
        assert ends[0]["position"] < stopped  # recorded before the store closed
        doc = docs[agent.client_id]
        assert (doc["transport"], doc["connection_lost"]) == (None, False)


def test_the_edge_takes_only_channel_websockets() -> None:
    shortcut = ChannelShortcut()

    def match(kind: str, path: str) -> str | None:
        return shortcut.match({"type": kind, "path": path})

    assert match("websocket", "/api/v1/agents/gpu-box.lab_1/channel") == "gpu-box.lab_1"
    assert match("http", "/api/v1/agents/a/channel") is None
    assert match("websocket", "/api/v1/agents/a/b/channel") is None
    assert match("websocket", "/api/v1/agents//channel") is None
    assert match("websocket", "/api/v2/agents/a/channel") is None
    assert shortcut.match({"type": "lifespan"}) is None


def channel_scope(client_id: str, token: str | None) -> dict[str, Any]:
    """The ASGI scope of a channel upgrade, as uvicorn builds it."""
    path = f"/api/v1/agents/{client_id}/channel"
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {token}".encode())] if token else [],
        "client": ("127.0.0.1", 1),
        "server": ("obt", 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }


async def talk(app: Any, token: str | None, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One WebSocket session with the ASGI app in this process: the messages it sent."""
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []
    await incoming.put({"type": "websocket.connect"})
    for frame in frames:
        await incoming.put({"type": "websocket.receive", "text": json.dumps(frame)})

    async def receive() -> dict[str, Any]:
        return await incoming.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        answers = [m for m in sent if m["type"] == "websocket.send"]
        if message["type"] != "websocket.send" or len(answers) == len(frames):
            await incoming.put({"type": "websocket.disconnect", "code": 1000})

    await asyncio.wait_for(app(channel_scope("a", token), receive, send), 10)
    return sent


@pytest.mark.parametrize("served_by", ["edge", "route"])
async def test_edge_and_route_serve_the_same_channel(tmp_path: Path, served_by: str) -> None:
    settings = load_settings(data_dir=tmp_path, enrollment_token=ENROLL, admin_token=ENROLL[::-1])
    app = create_app(settings)
    if served_by == "route":
        for middleware in app.user_middleware:
            if middleware.cls is Edge:
                middleware.kwargs["channel"] = None
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://obt") as http:
            session = str(uuid.uuid4())
            r = await http.post(
                "/api/v1/agents/register",
                json={"client_id": "a", "hostname": "a", "session_id": session},
                headers={"Authorization": f"Bearer {ENROLL}"},
            )
            secret = r.json()["client_secret"]
        refused = await talk(app, None, [])
        assert refused[0]["type"] == "websocket.http.response.start"
        assert refused[0]["status"] == 401
        assert json.loads(refused[1]["body"])["code"] == "not_authenticated"
        body = {"seq": 1, "session_id": session, "ollama": {"reachable": True}}
        sent = await talk(
            app,
            secret,
            [
                {"type": "hello", "protocol": 1, "session_id": session},
                {"type": "heartbeat", "id": 1, "body": body},
            ],
        )
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.send"]
    welcome, ack = (json.loads(m["text"]) for m in sent[1:])
    assert welcome["type"] == "welcome"
    assert (ack["status"], ack["body"]["status"]) == (200, "online")


class InProcessAgent:
    """A channel to the ASGI app in this process, driven frame by frame."""

    def __init__(self, app: Any, client_id: str, token: str) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.hold_sends = asyncio.Event()
        self.hold_sends.set()
        scope = channel_scope(client_id, token)
        self.task = asyncio.create_task(app(scope, self.incoming.get, self._send))
        self.incoming.put_nowait({"type": "websocket.connect"})

    async def _send(self, message: dict[str, Any]) -> None:
        await self.hold_sends.wait()  # a slow reader: the server's sends wait here
        await self.outgoing.put(message)

    async def say(self, frame: dict[str, Any]) -> None:
        await self.incoming.put({"type": "websocket.receive", "text": json.dumps(frame)})

    async def hear(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.outgoing.get(), 10)
        if message["type"] == "websocket.send":
            heard: dict[str, Any] = json.loads(message["text"])
            return heard
        return message

    async def close(self) -> None:
        await self.incoming.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 10)


async def test_the_registry_sends_commands_and_hands_on_progress_and_results(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path, enrollment_token=ENROLL, admin_token=ENROLL[::-1])
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://obt") as http:
            session = str(uuid.uuid4())
            r = await http.post(
                "/api/v1/agents/register",
                json={"client_id": "a", "hostname": "a", "session_id": session},
                headers={"Authorization": f"Bearer {ENROLL}"},
            )
        registry: ChannelRegistry = app.state.channels
        heard: list[tuple[str, Any]] = []

        async def on_frame(client_id: str, frame: Any) -> None:
            heard.append((client_id, dict(frame)))

        registry.subscribe(on_frame)
        with pytest.raises(AgentNotConnected):
            await registry.send("a", {"type": "command", "operation_id": "op1"})
        agent = InProcessAgent(app, "a", r.json()["client_secret"])
        assert (await agent.hear())["type"] == "websocket.accept"
        await agent.say({"type": "hello", "protocol": 1, "session_id": session})
        assert (await agent.hear())["type"] == "welcome"
        assert registry.connected("a")
        command = {"type": "command", "operation_id": "op1", "action": "pull", "model": "m:1"}
        await registry.send("a", command)
        assert await agent.hear() == command
        progress = {"type": "progress", "operation_id": "op1", "body": {"completed": 5}}
        result = {"type": "result", "operation_id": "op1", "body": {"status": "succeeded"}}
        await agent.say(progress)
        await agent.say(result)
        await agent.say(
            {
                "type": "heartbeat",
                "id": 1,
                "body": {"seq": 1, "session_id": session, "ollama": {"reachable": True}},
            }
        )
        assert (await agent.hear())["status"] == 200  # after both frames were handed on
        assert heard == [("a", progress), ("a", result)]
        # An agent that stops reading: sends pile up to the bound, then AgentBusy.
        agent.hold_sends.clear()
        stuck = [
            asyncio.create_task(registry.send("a", {"type": "cancel", "operation_id": f"o{i}"}))
            for i in range(registry.max_pending_sends)
        ]
        channel = registry.current("a")
        assert channel is not None
        async with asyncio.timeout(10):
            while channel.pending_sends < registry.max_pending_sends:
                await asyncio.sleep(0)  # let the sends start (and block on the agent)
        with pytest.raises(AgentBusy):
            await registry.send("a", {"type": "cancel", "operation_id": "one-too-many"})
        agent.hold_sends.set()
        await asyncio.gather(*stuck)
        await agent.close()
        assert not registry.connected("a")
