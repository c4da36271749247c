"""A real `obt serve` process, on SQLite and on a MongoDB-wire server, driven over HTTP by
simulated agents: registration, heartbeats, models, timeout and recovery, restarts (clean and
kill -9), credentials, decommissioning, and the log's exactly-once promise for heartbeats."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.simulated_agent import (
    SimulatedAgent,
    all_events,
    bearer,
    client_status,
    health,
    heartbeat_counts,
    projections_at_head,
)
from tests.support.processes import (
    Launcher,
    ServerProcess,
    random_token,
    wait_until,
)

STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("mongodb", id="mongodb", marks=pytest.mark.mongodb),
]
NewServer = Callable[..., ServerProcess]
START_AFTER_CRASH_S = 90.0


def make_server(
    kind: str, request: pytest.FixtureRequest, data_dir: Path, **options: Any
) -> ServerProcess:
    if kind == "mongodb":
        uri = request.getfixturevalue("mongodb_uri")
        db = f"obt_{uuid.uuid4().hex[:12]}"  # one database per server, on a shared MongoDB
        return ServerProcess(data_dir, store="mongodb", mongodb_uri=uri, mongodb_db=db, **options)
    return ServerProcess(data_dir, **options)


@pytest.fixture(scope="module", params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def new_server(
    store_kind: str, request: pytest.FixtureRequest, tmp_path: Path, launch: Launcher
) -> NewServer:
    """Start a server of this module's store kind for this test (stopped afterwards)."""

    def start(**options: Any) -> ServerProcess:
        data_dir = tmp_path / f"data-{uuid.uuid4().hex[:6]}"
        return launch(make_server(store_kind, request, data_dir, **options))

    return start


@pytest.fixture(scope="module")
def shared_server(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server for the tests that neither restart it nor wait for timeouts."""
    server = make_server(store_kind, request, tmp_path_factory.mktemp("shared") / "data")
    with server.serving():
        yield server


def wait_for_status(http: httpx.Client, client_id: str, status: str, timeout: float = 10) -> None:
    wait_until(
        lambda: client_status(http, client_id) == status,
        timeout,
        lambda: f"{client_id} is {client_status(http, client_id)!r}, not {status!r}",
    )


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_client_life_through_timeout_recovery_and_restart(new_server: NewServer) -> None:
    server = new_server()
    agent = SimulatedAgent(server, "lifecycle-1")
    with server.client() as http:
        # register
        response = agent.register(http)
        assert response.status_code == 201, response.text
        registered = response.json()
        assert registered["client_secret"]
        assert registered["heartbeat_interval_s"] == server.interval_s
        assert registered["timeout_s"] == server.timeout_s
        wait_for_status(http, agent.client_id, "online")

        # heartbeat
        ack = agent.heartbeat(http)
        assert ack.status_code == 200, ack.text
        assert ack.json()["status"] == "online"
        assert ack.json()["models_wanted"] is True  # the server holds no model report yet

        # models
        report = agent.report_models(http, ["llama3.2:3b", "qwen2.5:7b"])
        assert report.status_code == 200, report.text
        assert sorted(report.json()["added"]) == ["llama3.2:3b", "qwen2.5:7b"]

        def fleet_has_models() -> bool:
            names = {m["name"] for m in http.get("/models").json()["items"]}
            return {"llama3.2:3b", "qwen2.5:7b"} <= names

        wait_until(fleet_has_models, 10, lambda: http.get("/models").text)
        detail = http.get(f"/clients/{agent.client_id}").json()
        assert detail["models_count"] == 2
        assert [m["name"] for m in detail["models"]] == ["llama3.2:3b", "qwen2.5:7b"]

        # timeout: silence for longer than the timeout (3 s) makes the client offline
        wait_for_status(http, agent.client_id, "offline", timeout=server.timeout_s + 10)
        timed_out = all_events(http, type="ClientTimedOut", stream=agent.stream)
        assert len(timed_out) == 1, timed_out

        # recovery: the next heartbeat brings it back
        ack = agent.heartbeat(http)
        assert ack.status_code == 200, ack.text
        assert ack.json()["status"] == "online"
        wait_for_status(http, agent.client_id, "online")
        assert len(all_events(http, type="ClientRecovered", stream=agent.stream)) == 1
        agent.heartbeat(http).raise_for_status()

        # clean restart: the log and the state survive it
        wait_until(lambda: projections_at_head(http), 10, lambda: str(health(http)))
        before = all_events(http)
        client_before = http.get(f"/clients/{agent.client_id}").json()

    server.restart()
    with server.client() as http:
        wait_until(lambda: projections_at_head(http), 10, lambda: str(health(http)))
        after = all_events(http)
        assert after[: len(before)] == before, "the restart changed recorded events"
        added = after[len(before) :]
        assert types_of(added)[:2] == ["ServerStopped", "ServerStarted"], types_of(added)
        # Only a timeout could follow, once the start's grace window (one timeout) ran out.
        assert set(types_of(added)[2:]) <= {"ClientTimedOut"}, types_of(added)
        assert added[1]["data"]["previous_shutdown"] == "clean"

        client_after = http.get(f"/clients/{agent.client_id}").json()
        for key in ("hostname", "registered_at", "last_seen", "models", "session_id", "labels"):
            assert client_after[key] == client_before[key], key
        # While the server was down nobody watched: unknown until the client is heard again.
        assert client_after["status"] in ("unknown", "offline")

        # A replayed heartbeat (the last seq, again) is acknowledged and not recorded twice.
        replay = agent.heartbeat(http, seq=agent.seq)
        assert replay.status_code == 200, replay.text
        ack = agent.heartbeat(http)
        assert ack.status_code == 200, ack.text
        wait_for_status(http, agent.client_id, "online")

        counts = heartbeat_counts(http, agent)
        assert counts == dict.fromkeys(agent.acknowledged, 1)


def test_replayed_heartbeat_is_acknowledged_once(shared_server: ServerProcess) -> None:
    agent = SimulatedAgent(shared_server, "replay-1")
    with shared_server.client() as http:
        assert agent.register(http).status_code == 201
        for _ in range(3):
            assert agent.heartbeat(http).status_code == 200
        for seq in (3, 3, 2):
            response = agent.heartbeat(http, seq=seq)
            if seq == agent.seq:
                assert response.status_code == 200, response.text
            else:  # older than the last one: refused, and not recorded either
                assert response.status_code == 409, response.text
                assert response.json()["code"] == "stale_seq"
        assert heartbeat_counts(http, agent) == dict.fromkeys(agent.acknowledged, 1)
        assert len(agent.acknowledged) == 3


def test_heartbeat_after_deregistration_does_not_revive_the_client(
    shared_server: ServerProcess,
) -> None:
    """An agent stopping with SIGTERM cancels its heartbeat in flight and deregisters; the
    server may receive the two in either order. A heartbeat of the deregistered session
    arriving last must not bring the client back (it would then time out as *offline*)."""
    agent = SimulatedAgent(shared_server, "stopped-1")
    with shared_server.client() as http:
        assert agent.register(http).status_code == 201
        assert agent.heartbeat(http).status_code == 200
        stop = http.post(
            f"/agents/{agent.client_id}/deregister", headers=bearer(agent.secret or "")
        )
        assert stop.status_code == 204, stop.text
        late = agent.heartbeat(http)
        assert late.status_code == 409, late.text
        assert late.json()["code"] == "client_stopped"
        wait_for_status(http, agent.client_id, "stopped")
        types = types_of(all_events(http, stream=agent.stream))
        assert types == ["ClientRegistered", "HeartbeatReceived", "ClientDeregistered"]

        # A restarted agent (a new session) registers again and is back.
        restarted = SimulatedAgent(shared_server, agent.client_id, secret=agent.secret)
        assert restarted.register(http).status_code == 200
        assert restarted.heartbeat(http).status_code == 200
        wait_for_status(http, agent.client_id, "online")


def test_credentials_are_checked(shared_server: ServerProcess) -> None:
    server = shared_server
    alice = SimulatedAgent(server, "auth-alice")
    bob = SimulatedAgent(server, "auth-bob")
    with server.client() as http:
        assert alice.register(http).status_code == 201
        assert bob.register(http).status_code == 201
        path = f"/agents/{alice.client_id}/heartbeats"
        body = alice.heartbeat_body(1)

        cases = {
            "no token": ({}, 401, "not_authenticated"),
            "not a bearer token": ({"Authorization": "Basic YWxpY2U6cHc="}, 401, None),
            "wrong token": (bearer(random_token()), 401, "not_authenticated"),
            "another client's secret": (bearer(bob.secret or ""), 403, "forbidden"),
            "enrollment token": (bearer(server.enrollment_token), 403, "forbidden"),
            "admin token": (bearer(server.admin_token), 401, "not_authenticated"),
        }
        for case, (headers, status, code) in cases.items():
            response = http.post(path, json=body, headers=headers)
            assert response.status_code == status, f"{case}: {response.text}"
            if code:
                assert response.json()["code"] == code, case
        # Checked before the body: bad credentials with a bad body still say 401, not 422.
        response = http.post(path, json={"nonsense": True}, headers=bearer(random_token()))
        assert response.status_code == 401, response.text

        # Model reports and deregistration take the client's own secret only.
        models = http.put(
            f"/agents/{alice.client_id}/models",
            json={"models": [], "loaded": []},
            headers=bearer(bob.secret or ""),
        )
        assert models.status_code == 403, models.text
        deregister = http.post(
            f"/agents/{alice.client_id}/deregister", headers=bearer(server.enrollment_token)
        )
        assert deregister.status_code == 403, deregister.text

        # A new client cannot enrol with anything but the enrollment token.
        stranger = SimulatedAgent(server, "auth-stranger", secret=random_token())
        refused = stranger.register(http)
        assert refused.status_code == 401, refused.text

        # Nothing refused above reached the log.
        assert all_events(http, type="HeartbeatReceived", stream=alice.stream) == []
        assert client_status(http, "auth-stranger") is None
        assert alice.heartbeat(http).status_code == 200


def test_decommissioned_client_is_refused(shared_server: ServerProcess) -> None:
    server = shared_server
    agent = SimulatedAgent(server, "decommission-1")
    with server.client() as http:
        assert agent.register(http).status_code == 201
        assert agent.heartbeat(http).status_code == 200
        wait_for_status(http, agent.client_id, "online")
        target = f"/clients/{agent.client_id}"

        assert http.delete(target).status_code == 401
        assert http.delete(target, headers=bearer(server.enrollment_token)).status_code == 403
        assert http.delete(target, headers=bearer(agent.secret or "")).status_code == 403
        assert client_status(http, agent.client_id) == "online"

        response = http.delete(target, headers=bearer(server.admin_token))
        assert response.status_code == 204, response.text
        wait_for_status(http, agent.client_id, "decommissioned")
        # Still listed, with that status.
        listed = {c["client_id"]: c["status"] for c in http.get("/clients").json()["items"]}
        assert listed[agent.client_id] == "decommissioned"

        refused = agent.heartbeat(http)
        assert refused.status_code in (401, 403), refused.text
        again = agent.register(http)  # with its (revoked) secret
        assert again.status_code in (401, 403), again.text
        agent.secret = None  # and with the enrollment token: the id stays retired
        enrol = agent.register(http)
        assert enrol.status_code in (403, 409), enrol.text
        assert enrol.json()["code"] == "client_decommissioned"

        # Decommissioning twice is harmless; an unknown client is a 404.
        assert http.delete(target, headers=bearer(server.admin_token)).status_code == 204
        missing = http.delete("/clients/no-such-client", headers=bearer(server.admin_token))
        assert missing.status_code == 404, missing.text

        assert len(all_events(http, type="ClientDecommissioned", stream=agent.stream)) == 1
        assert heartbeat_counts(http, agent) == dict.fromkeys(agent.acknowledged, 1)
        assert client_status(http, agent.client_id) == "decommissioned"


async def _beat_until_refused(agent: SimulatedAgent, http: httpx.AsyncClient) -> int:
    """Heartbeats back to back until the server stops answering; returns how many were sent."""
    sent = 0
    while True:
        sent += 1
        try:
            response = await agent.heartbeat_async(http)
        except httpx.TransportError:
            return sent
        if response.status_code != 200:
            raise AssertionError(f"{agent.client_id}: {response.status_code} {response.text}")


def read_models(http: httpx.Client) -> dict[str, Any]:
    clients = sorted(http.get("/clients").json()["items"], key=lambda c: c["client_id"])
    models = sorted(http.get("/models").json()["items"], key=lambda m: m["name"])
    return {"clients": clients, "models": models}


@pytest.mark.timeout(300)
async def test_kill_9_during_heartbeat_burst_loses_no_acknowledged_heartbeat(
    new_server: NewServer, store_kind: str
) -> None:
    # A long timeout: no scheduler event may slip in while read models are compared.
    server = new_server(interval_s=10, timeout_s=30)
    agents = [SimulatedAgent(server, f"burst-{i}") for i in range(4)]
    with server.client() as http:
        for agent in agents:
            assert agent.register(http).status_code == 201
            assert agent.report_models(http, [f"model-{agent.client_id}", "shared:1b"]).is_success

    target = 120 if store_kind == "sqlite" else 60  # the Mongo stand-in is slower
    async with httpx.AsyncClient(base_url=server.api_url, timeout=10) as ahttp:
        beating = [asyncio.create_task(_beat_until_refused(a, ahttp)) for a in agents]
        deadline = time.monotonic() + 60
        try:
            while sum(len(a.acknowledged) for a in agents) < target:
                assert time.monotonic() < deadline, f"fewer than {target} heartbeats in 60 s"
                for task in beating:
                    if task.done():  # an agent refused before the kill: show why
                        task.result()
                        raise AssertionError("a simulated agent stopped before the kill")
                await asyncio.sleep(0.01)
            # Killed from a thread, so requests are still in flight when SIGKILL lands.
            code = await asyncio.to_thread(server.kill)
            await asyncio.gather(*beating)
        finally:
            for task in beating:
                task.cancel()
            await asyncio.gather(*beating, return_exceptions=True)
    assert code == -9

    # On MongoDB a group commit cut off by the kill holds the event counter until the server
    # aborts the orphaned transaction (transactionLifetimeLimitSeconds: 60 s on a default
    # mongod, 3 s on the session's stand-in); the start waits for it.
    server.start(timeout=START_AFTER_CRASH_S)
    with server.client() as http:
        wait_until(lambda: projections_at_head(http), 20, lambda: str(health(http)))
        started = all_events(http, type="ServerStarted")
        assert started[-1]["data"]["previous_shutdown"] == "unclean"
        assert all_events(http, type="ServerStopped") == []
        for agent in agents:
            counts = heartbeat_counts(http, agent)
            missing = agent.acknowledged - counts.keys()
            assert not missing, f"{agent.client_id}: acknowledged but lost: {sorted(missing)}"
            assert all(n == 1 for n in counts.values()), counts
        live = read_models(http)

    # Read models kept up incrementally across the crash equal a rebuild from position 0.
    # A second unclean start changes nothing in them (the clients are unknown since the
    # first), so the comparison is exact. Nothing else writes meanwhile: no agent beats, and
    # the long timeout keeps the scheduler quiet.
    assert {c["status"] for c in live["clients"]} == {"unknown"}
    assert [m["installed_count"] for m in live["models"] if m["name"] == "shared:1b"] == [4]
    server.kill()
    rebuilt = server.run_cli("projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    server.start(timeout=START_AFTER_CRASH_S)
    with server.client() as http:
        wait_until(lambda: projections_at_head(http), 20, lambda: str(health(http)))
        assert read_models(http) == live

        for agent in agents:
            # The heartbeat in flight at the kill may or may not have been committed: the agent
            # sends it again and the server acknowledges it once either way.
            assert agent.heartbeat(http, seq=agent.seq).status_code == 200
            assert heartbeat_counts(http, agent) == dict.fromkeys(agent.acknowledged, 1)
