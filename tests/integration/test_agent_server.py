"""The real agent process against the real server process and a fake Ollama process: what the
agent sees of Ollama reaches the server's read models and log, and it survives a server
restart and stops cleanly on SIGTERM."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.simulated_agent import all_events, client_status
from tests.support.processes import (
    CLEAN_EXITS,
    AgentProcess,
    FakeOllamaProcess,
    Launcher,
    ServerProcess,
    wait_until,
)

CLIENT_ID = "agent-it-1"
SEEDED = ["llama3.2:3b", "qwen2.5:7b"]  # what the fake Ollama starts with


@dataclass
class Stack:
    server: ServerProcess
    ollama: FakeOllamaProcess
    agent: AgentProcess
    http: httpx.Client

    def client(self) -> dict[str, Any]:
        response = self.http.get(f"/clients/{CLIENT_ID}")
        body: dict[str, Any] = response.json() if response.status_code == 200 else {}
        return body

    def wait_for(self, condition: Callable[[dict[str, Any]], bool], what: str) -> None:
        wait_until(
            lambda: condition(self.client()),
            15,
            lambda: f"{what}; the client reads {self.client()}\n{self.agent.output(20)}",
        )

    def events(self, type_: str, **params: Any) -> list[dict[str, Any]]:
        return all_events(self.http, type=type_, stream=f"client-{CLIENT_ID}", **params)


@pytest.fixture
def stack(tmp_path: Path, launch: Launcher) -> Iterator[Stack]:
    server = ServerProcess(tmp_path / "data", log_dir=tmp_path / "logs")
    ollama = FakeOllamaProcess(tmp_path / "logs")
    launch.together(server, ollama)
    agent = launch(
        AgentProcess(
            tmp_path / "logs",
            server_url=server.base_url,
            ollama_url=ollama.base_url,
            enrollment_token=server.enrollment_token,
            client_id=CLIENT_ID,
        )
    )
    with server.client() as http:
        yield Stack(server, ollama, agent, http)


def test_agent_reports_ollama_and_its_models(stack: Stack) -> None:
    stack.wait_for(
        lambda c: c.get("status") == "online" and c["models_count"] == len(SEEDED),
        "the agent's client should be online with the seeded models",
    )
    client = stack.client()
    assert [m["name"] for m in client["models"]] == SEEDED
    assert client["ollama"]["reachable"] is True
    assert client["ollama"]["version"]
    assert client["agent_version"]

    # A model pulled on the machine shows up as ModelAdded and in the fleet's models.
    stack.ollama.add_model("mistral:7b", size=4_100_000_000, family="mistral")
    wait_until(
        lambda: any(e["data"]["name"] == "mistral:7b" for e in stack.events("ModelAdded")),
        15,
        "no ModelAdded for mistral:7b",
    )

    def fleet_lists_it() -> bool:
        items = stack.http.get("/models").json()["items"]
        return any(
            m["name"] == "mistral:7b" and [h["client_id"] for h in m["hosts"]] == [CLIENT_ID]
            for m in items
        )

    wait_until(fleet_lists_it, 15, lambda: stack.http.get("/models").text)

    # Ollama answering with errors: heartbeats continue, the client is degraded.
    stack.ollama.set_mode("error")
    stack.wait_for(lambda c: c.get("status") == "degraded", "error mode should degrade")
    assert stack.events("OllamaBecameUnavailable")

    # Ollama's process gone: still degraded, and since the model set is unknown without
    # Ollama, nothing may read as removed.
    stack.ollama.stop()
    stack.wait_for(
        lambda c: c["ollama"]["error"] and "500" not in c["ollama"]["error"],
        "the error should change from HTTP 500 to a connection failure",
    )
    client = stack.client()
    assert client["status"] == "degraded"
    assert client["ollama"]["reachable"] is False
    assert client["models_count"] == len(SEEDED) + 1
    assert stack.events("ModelRemoved") == []

    # Ollama back (same port, fresh state: mode ok, only the seeded models).
    stack.ollama.start()
    stack.wait_for(lambda c: c.get("status") == "online", "Ollama back should bring it online")
    assert stack.events("OllamaBecameAvailable")
    wait_until(
        lambda: any(e["data"]["name"] == "mistral:7b" for e in stack.events("ModelRemoved")),
        15,
        "no ModelRemoved for mistral:7b",
    )
    stack.wait_for(lambda c: c["models_count"] == len(SEEDED), "mistral:7b should be gone")
    assert stack.events("ClientTimedOut") == []


def test_agent_reconnects_after_server_restart_and_state_loss(stack: Stack) -> None:
    stack.wait_for(lambda c: c.get("status") == "online", "the client should come online")
    stack.server.restart()
    started = all_events(stack.http, type="ServerStarted")[-1]["position"]

    def heartbeat_after_restart() -> bool:
        return bool(stack.events("HeartbeatReceived", after=started))

    wait_until(heartbeat_after_restart, 20, lambda: stack.agent.output(30))
    stack.wait_for(lambda c: c.get("status") == "online", "online again after the restart")
    stack.agent.check_alive()
    # The same agent process, the same session: no re-registration was needed.
    assert stack.events("ClientReregistered") == []

    # A server that lost its state (a fresh data dir; the tokens come from the environment)
    # no longer knows the client or its secret: the agent enrols again by itself.
    assert stack.server.stop() in CLEAN_EXITS
    shutil.rmtree(stack.server.data_dir)
    stack.server.start()
    stack.wait_for(
        lambda c: c.get("status") == "online" and c["models_count"] == len(SEEDED),
        "the agent should enrol again with the server that lost its state",
    )
    assert len(stack.events("ClientRegistered")) == 1
    stack.agent.check_alive()


def test_agent_killed_recovers_reenrols_and_stops_cleanly(stack: Stack) -> None:
    stack.wait_for(lambda c: c.get("status") == "online", "the client should come online")
    first_session = stack.client()["session_id"]

    # kill -9: no deregistration, so the server notices the silence.
    stack.agent.kill()
    stack.wait_for(lambda c: c.get("status") == "offline", "a silent client times out")
    assert len(stack.events("ClientTimedOut")) == 1
    assert stack.events("ClientDeregistered") == []

    # Started again: a new session re-registers with the saved secret and recovers.
    secret_file = stack.agent.state_dir / "secret.json"
    saved = secret_file.read_text()
    stack.agent.start()
    stack.wait_for(
        lambda c: c.get("status") == "online" and c["session_id"] != first_session,
        "the restarted agent should be online in a new session",
    )
    assert len(stack.events("ClientReregistered")) == 1
    assert len(stack.events("ClientRecovered")) == 1
    assert secret_file.read_text() == saved, "a known client keeps its secret"

    # An admin revokes the secret: the agent's next heartbeat is refused, it enrols again
    # with the enrollment token and carries on with a new secret.
    revoked_at = all_events(stack.http)[-1]["position"]
    revoke = stack.http.post(
        f"/clients/{CLIENT_ID}/revoke-secret",
        headers={"Authorization": f"Bearer {stack.server.admin_token}"},
    )
    assert revoke.status_code == 204, revoke.text
    wait_until(
        lambda: (
            stack.events("ClientReregistered", after=revoked_at)
            and stack.events("HeartbeatReceived", after=revoked_at)
        ),
        20,
        lambda: stack.agent.output(30),
    )
    assert secret_file.exists() and secret_file.read_text() != saved
    stack.wait_for(lambda c: c.get("status") == "online", "online with the new secret")
    stack.agent.check_alive()

    # SIGTERM: the agent deregisters and exits 0; the client reads as stopped.
    assert stack.agent.stop() == 0, stack.agent.output()
    assert len(stack.events("ClientDeregistered")) == 1
    wait_until(
        lambda: client_status(stack.http, CLIENT_ID) == "stopped",
        10,
        lambda: f"the client reads {stack.client()}",
    )
