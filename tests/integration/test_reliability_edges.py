"""A real server against slow and oversized requests, and agents whose clocks are wrong:
bounded answers for the first, unchanged liveness (the skew shown as a diagnostic) for the
second."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.simulated_agent import SimulatedAgent, all_events, client_status
from tests.support.processes import ServerProcess, wait_until

BODY_TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("edges") / "data", env={"OBT_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S)}
    )
    with server.serving():
        yield server


def raw_request(server: ServerProcess, head: bytes, body: bytes, timeout: float = 15) -> bytes:
    """Send `head` and `body` as they are, then read until the server closes or answers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunk:
                break
        return b"".join(chunks)


def test_a_stalled_body_gets_408_while_others_are_served(server: ServerProcess) -> None:
    agent = SimulatedAgent(server, "edge-slow")
    with server.client() as http:
        assert agent.register(http).status_code == 201
        head = (
            f"POST /api/v1/agents/{agent.client_id}/heartbeats HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {agent.secret}\r\n"
            "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
        ).encode()
        started = time.monotonic()
        # Half a body, then nothing: the server must not wait for the rest for ever.
        answer = raw_request(server, head, b'{"seq": 1, "session_id": "')
        elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
        assert b'"code":"request_timeout"' in answer
        assert BODY_TIMEOUT_S <= elapsed < BODY_TIMEOUT_S + 5
        # Nothing was recorded for it, and the client's next heartbeat is served normally.
        assert all_events(http, type="HeartbeatReceived", stream=agent.stream) == []
        assert agent.heartbeat(http).status_code == 200


def test_a_body_that_arrives_in_time_in_pieces_is_served(server: ServerProcess) -> None:
    agent = SimulatedAgent(server, "edge-chunked")
    with server.client() as http:
        assert agent.register(http).status_code == 201

        def pieces() -> Iterator[bytes]:
            body = httpx.Request("POST", "/", json=agent.heartbeat_body(1)).content
            yield body[:10]
            yield body[10:]

        response = http.post(
            f"/agents/{agent.client_id}/heartbeats",
            content=pieces(),
            headers={"Authorization": f"Bearer {agent.secret}", "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text


def test_oversized_headers_and_bodies_are_refused(server: ServerProcess) -> None:
    huge = b"x" * 200_000
    answer = raw_request(
        server, b"GET /api/v1/health HTTP/1.1\r\nHost: a\r\nX-Pad: " + huge + b"\r\n\r\n", b""
    )
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'"code":"headers_too_large"' in answer
    answer = raw_request(
        server,
        b"POST /api/v1/agents/register HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999\r\n\r\n",
        b"{",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    with server.client() as http:
        # No Content-Length (chunked): counted as it arrives, refused past the limit.
        chunks = (b"x" * 65536 for _ in range(32))  # 2 MiB against the 1 MiB default
        response = http.post(
            "/agents/register", content=chunks, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "body_too_large"
        assert http.get("/health").status_code == 200


def test_agent_clocks_an_hour_off_change_nothing_about_liveness(server: ServerProcess) -> None:
    ahead = SimulatedAgent(server, "edge-clock-ahead")
    behind = SimulatedAgent(server, "edge-clock-behind")
    hour = timedelta(hours=1)
    with server.client() as http:
        for agent in (ahead, behind):
            assert agent.register(http).status_code == 201

        def beat(agent: SimulatedAgent, offset: timedelta) -> dict[str, Any]:
            agent.seq += 1
            body = agent.heartbeat_body(agent.seq)
            body["sent_at"] = (datetime.now(UTC) + offset).isoformat()
            r = http.post(
                f"/agents/{agent.client_id}/heartbeats",
                json=body,
                headers={"Authorization": f"Bearer {agent.secret}"},
            )
            assert r.status_code == 200, r.text
            ack: dict[str, Any] = r.json()
            return ack

        assert beat(ahead, hour)["status"] == "online"
        assert beat(behind, -hour)["status"] == "online"

        def skews() -> dict[str, Any]:
            return {
                a.client_id: http.get(f"/clients/{a.client_id}").json().get("clock_skew_ms")
                for a in (ahead, behind)
            }

        shown = wait_until(lambda: all(skews().values()) and skews(), 10, lambda: str(skews()))
        assert abs(shown[ahead.client_id] - 3_600_000) < 60_000
        assert abs(shown[behind.client_id] + 3_600_000) < 60_000

        # Judged by the server's clock: the agent whose clock runs an hour ahead times out after
        # the usual silence, the one behind stays online while it beats.
        def ahead_offline_while_behind_beats() -> bool:
            beat(behind, -hour)
            return client_status(http, ahead.client_id) == "offline"

        wait_until(
            ahead_offline_while_behind_beats,
            server.timeout_s + 15,
            lambda: f"{ahead.client_id} is {client_status(http, ahead.client_id)}",
            interval=0.25,
        )
        assert client_status(http, behind.client_id) == "online"
        timed_out = all_events(http, type="ClientTimedOut", stream=ahead.stream)
        assert len(timed_out) == 1
        received = all_events(http, type="HeartbeatReceived", stream=ahead.stream)[-1]
        # last_seen is the server's receive time, not the agent's sent_at (an hour later).
        last_seen = datetime.fromisoformat(timed_out[0]["data"]["last_seen"])
        assert last_seen == datetime.fromisoformat(received["recorded_at"])
        assert all_events(http, type="ClientTimedOut", stream=behind.stream) == []


def test_health_reports_the_store_and_the_monitor(server: ServerProcess) -> None:
    with server.client() as http:
        body = http.get("/health").json()
    assert body["store"]["reachable"] is True
    assert body["store"]["down_since"] is None
    assert body["scheduler"]["held"] is None
