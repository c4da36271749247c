"""A real server process: live updates over SSE (with resume), /metrics, /health, the CLI's
export and replay commands."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ServerProcess, wait_until
from tests.support.sse import SseReader, server_has_subscriber


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "data") as running:
        yield running


def register(server: ServerProcess, cid: str) -> tuple[str, str]:
    session = str(uuid.uuid4())
    r = httpx.post(
        f"{server.api_url}/agents/register",
        json={
            "client_id": cid,
            "hostname": f"host-{cid}",
            "session_id": session,
            "ollama": {"installed": True, "reachable": True, "version": "0.5.7"},
        },
        headers={"Authorization": f"Bearer {server.enrollment_token}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return r.json()["client_secret"], session


def heartbeat(
    server: ServerProcess, cid: str, secret: str, session: str, seq: int, up: bool
) -> None:
    r = httpx.post(
        f"{server.api_url}/agents/{cid}/heartbeats",
        json={"seq": seq, "session_id": session, "ollama": {"reachable": up}},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_live_updates_arrive_and_resume(server: ServerProcess) -> None:
    secret, session = register(server, "live1")
    reader = SseReader(f"{server.api_url}/live")
    try:
        wait_until(lambda: server_has_subscriber(server), 10, "the SSE stream did not connect")
        heartbeat(server, "live1", secret, session, 1, up=False)
        message = None

        def degraded_seen() -> bool:
            nonlocal message
            message = reader.find("client", lambda d: d["status"] == "degraded")
            return message is not None

        wait_until(degraded_seen, 10, "no live 'degraded' client message")
        assert message is not None
        assert int(message["id"]) > 0
        assert reader.find("timeline", lambda d: d["type"] == "OllamaBecameUnavailable")
        first_id = message["id"]
    finally:
        reader.close()
    heartbeat(server, "live1", secret, session, 2, up=True)
    resumed = SseReader(f"{server.api_url}/live", last_event_id=first_id)
    try:
        wait_until(
            lambda: resumed.find("client", lambda d: d["status"] == "online") is not None,
            10,
            "the change made while disconnected was not replayed after Last-Event-ID",
        )
    finally:
        resumed.close()


def test_health_and_metrics(server: ServerProcess) -> None:
    secret, session = register(server, "m1")
    heartbeat(server, "m1", secret, session, 1, up=True)
    wait_until(
        lambda: all(
            p["lag"] == 0
            for p in httpx.get(f"{server.api_url}/health", timeout=5).json()["projections"]
        ),
        10,
        "projections did not catch up",
    )
    health = httpx.get(f"{server.api_url}/health", timeout=5).json()
    assert health["status"] == "ok"
    assert health["store"]["reachable"] is True
    assert health["scheduler"]["running"] is True
    metrics = httpx.get(f"{server.base_url}/metrics", timeout=5).text
    assert "obt_heartbeats_total 1.0" in metrics
    assert 'obt_appended_events_total{type="HeartbeatReceived"} 1.0' in metrics
    assert 'obt_clients{status="online"} 1.0' in metrics
    assert "obt_request_duration_seconds_bucket" in metrics
    assert 'obt_projection_lag_events{projection="clients"} 0.0' in metrics


def test_cli_export_and_replay_match_the_api(server: ServerProcess, tmp_path: Path) -> None:
    secret, session = register(server, "cli1")
    heartbeat(server, "cli1", secret, session, 1, up=True)
    exported = httpx.get(f"{server.api_url}/events/export", timeout=10).text.splitlines()
    assert [json.loads(line)["type"] for line in exported][-2:] == [
        "ClientRegistered",
        "HeartbeatReceived",
    ]
    server.stop()
    out = tmp_path / "events.ndjson"
    result = server.run_cli("events", "export", "-o", str(out))
    assert result.returncode == 0, result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[: len(exported)] == exported
    assert all("secret_sha256" not in line for line in lines)
    result = server.run_cli("replay", "--at", "2100-01-01T00:00:00Z", "--client", "cli1")
    assert result.returncode == 0, result.stderr
    replayed = json.loads(result.stdout)
    assert replayed["client"]["client_id"] == "cli1"
    assert replayed["client"]["last_seen"] is not None
    result = server.run_cli("replay", "--at", "yesterday")
    assert result.returncode == 2
    assert "ISO-8601" in result.stderr
    result = server.run_cli("projections", "rebuild", "nonsense")
    assert result.returncode == 2
    assert "unknown projection" in result.stderr
