"""Fleet operations end to end on real processes: `obt serve`, real agents on their channels,
each with its own fake Ollama (the only fake: Ollama cannot run here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import (
    AgentProcess,
    FakeOllamaProcess,
    Launcher,
    ServerProcess,
    wait_until,
)

WAIT_S = 60.0
MODEL = "phi4:14b"  # in every fake's library, installed on none


def operation(http: httpx.Client, operation_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = http.get(f"/operations/{operation_id}").json()
    return doc


def finished(http: httpx.Client, operation_id: str) -> dict[str, Any] | None:
    doc = operation(http, operation_id)
    return doc if doc.get("finished_at") else None


def test_a_pull_to_three_hosts_one_failing_in_band_and_a_read_only_agent(
    tmp_path: Path, launch: Launcher
) -> None:
    logs = tmp_path / "logs"
    server = ServerProcess(tmp_path / "data", log_dir=logs)
    ollamas = {cid: FakeOllamaProcess(logs) for cid in ("a", "b", "c", "ro")}
    launch.together(server, *ollamas.values())
    # Slow enough for progress; host c's Ollama fails half-way with an in-band error.
    for cid, ollama in ollamas.items():
        plan: dict[str, Any] = {"step_s": 0.1, "steps": 10}
        if cid == "c":
            plan["fail"] = {MODEL: "max retries exceeded: unexpected EOF"}
        ollama.control("POST", "/pull", plan)
    for cid, ollama in ollamas.items():
        launch(
            AgentProcess(
                logs / cid,
                server_url=server.base_url,
                ollama_url=ollama.base_url,
                enrollment_token=server.enrollment_token,
                client_id=cid,
                state_dir=tmp_path / f"state-{cid}",
                env={"OBT_AGENT_READ_ONLY": "true"} if cid == "ro" else None,
            )
        )
    with server.client(server.admin_token) as http:
        wait_until(
            lambda: all(http.get(f"/clients/{cid}").status_code == 200 for cid in ollamas),
            WAIT_S,
            "every agent should register",
        )
        answer = http.post(
            "/operations",
            json={
                "action": "pull",
                "model": MODEL,
                "targets": {"client_ids": sorted(ollamas)},
                "max_parallel": 2,
            },
            headers={"User-Agent": "obt-test/1"},
        )
        assert answer.status_code == 202, answer.text
        operation_id = answer.json()["operation_id"]
        found = wait_until(
            lambda: finished(http, operation_id),
            WAIT_S,
            lambda: f"the operation should finish: {operation(http, operation_id)}",
        )
        assert found is not None
        done = found
        states = {cid: t["state"] for cid, t in done["targets"].items()}
        assert states == {"a": "succeeded", "b": "succeeded", "c": "failed", "ro": "failed"}
        assert "unexpected EOF" in done["targets"]["c"]["reason"]
        assert done["targets"]["ro"]["reason"] == "read-only agent"
        # The hosts that pulled it report it (the model report comes before the result).
        for cid in ("a", "b"):
            models = http.get(f"/clients/{cid}").json()["models"]
            assert MODEL in {m["name"] for m in models}, models
        events = http.get(
            "/events", params={"stream": f"operation-{operation_id}", "limit": 1000}
        ).json()["items"]
        types = [e["type"] for e in events]
        assert types[0] == "OperationRequested"
        assert types[-1] == "OperationFinished"
        assert events[0]["metadata"]["user_agent"] == "obt-test/1"
        assert "OperationTargetProgressed" in types
        # Never more than max_parallel running: count starts minus ends along the log.
        running = most = 0
        for t in types:
            running += t == "OperationTargetStarted"
            running -= t in ("OperationTargetSucceeded", "OperationTargetFailed")
            most = max(most, running)
        assert most <= 2
        timeline = http.get("/clients/a/timeline").json()["items"]
        assert any(
            f"Pull of {MODEL}" in e["summary"] and "succeeded" in e["summary"] for e in timeline
        )


def test_a_host_offline_until_later_then_a_cancel_stops_the_pull_still_running(
    tmp_path: Path, launch: Launcher
) -> None:
    logs = tmp_path / "logs"
    server = ServerProcess(tmp_path / "data", log_dir=logs)
    held, later = FakeOllamaProcess(logs), FakeOllamaProcess(logs)
    launch.together(server, held, later)
    held.control("POST", "/pull", {"hold": True})  # a's pull stays in progress

    def agent(cid: str, ollama: FakeOllamaProcess) -> AgentProcess:
        return AgentProcess(
            logs / cid,
            server_url=server.base_url,
            ollama_url=ollama.base_url,
            enrollment_token=server.enrollment_token,
            client_id=cid,
            state_dir=tmp_path / f"state-{cid}",
        )

    with server.client(server.admin_token) as http:
        launch(agent("a", held))
        b = launch(agent("b", later))
        wait_until(
            lambda: all(http.get(f"/clients/{c}").status_code == 200 for c in ("a", "b")),
            WAIT_S,
            "both agents should register",
        )
        b.stop()  # registered, now offline
        answer = http.post(
            "/operations",
            json={"action": "pull", "model": MODEL, "targets": {"client_ids": ["a", "b"]}},
        )
        assert answer.status_code == 202, answer.text
        operation_id = answer.json()["operation_id"]

        def states() -> dict[str, str]:
            doc = operation(http, operation_id)
            return {cid: t["state"] for cid, t in doc.get("targets", {}).items()}

        def shown() -> str:
            return f"operation {operation_id}: {states()}"

        wait_until(lambda: states() == {"a": "running", "b": "queued"}, WAIT_S, shown)
        launch(agent("b", later))  # back: its queued pull starts and finishes
        wait_until(lambda: states() == {"a": "running", "b": "succeeded"}, WAIT_S, shown)
        cancelled = http.post(f"/operations/{operation_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["agents_told"] == ["a"]
        done = wait_until(lambda: finished(http, operation_id), WAIT_S, shown)
        assert done is not None
        assert {k: v for k, v in done["counts"].items() if v} == {"succeeded": 1, "cancelled": 1}
        # The agent stopped its pull: the fake Ollama saw its client go away.
        wait_until(lambda: held.state()["pulls_aborted"] >= 1, WAIT_S, "a's pull should stop")


def test_a_host_that_stays_offline_expires_with_the_operation(
    tmp_path: Path, launch: Launcher
) -> None:
    logs = tmp_path / "logs"
    server = ServerProcess(tmp_path / "data", log_dir=logs)
    ollama = FakeOllamaProcess(logs)
    launch.together(server, ollama)
    with server.client(server.admin_token) as http:
        agent = launch(
            AgentProcess(
                logs / "gone",
                server_url=server.base_url,
                ollama_url=ollama.base_url,
                enrollment_token=server.enrollment_token,
                client_id="gone",
            )
        )
        wait_until(lambda: http.get("/clients/gone").status_code == 200, WAIT_S, "registered")
        agent.stop()
        answer = http.post(
            "/operations",
            json={
                "action": "pull",
                "model": MODEL,
                "targets": {"client_ids": ["gone"]},
                "expires_in_s": 2,
            },
        )
        assert answer.status_code == 202, answer.text
        operation_id = answer.json()["operation_id"]
        done = wait_until(
            lambda: finished(http, operation_id),
            WAIT_S,
            lambda: f"the operation should expire: {operation(http, operation_id)}",
        )
        assert done is not None
        assert done["targets"]["gone"]["state"] == "expired"
        assert ollama.state()["pulls"] == []  # never started
