"""The MongoDB store goes away under a running server and comes back: heartbeats get a prompt
503 with Retry-After (none hangs), /health shows the store down, a real agent backs off and
returns, nothing acknowledged is lost, and the outage is *unknown* time, not client downtime."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from obt.store.mongodb import TRANSACTION_TIMEOUT_S
from tests.integration.simulated_agent import (
    SimulatedAgent,
    all_events,
    client_status,
    heartbeat_counts,
)
from tests.support.processes import (
    AgentProcess,
    FakeOllamaProcess,
    Launcher,
    SecantusProcess,
    ServerProcess,
    wait_until,
)

pytestmark = pytest.mark.mongodb

# A heartbeat caught in a transaction when the store vanished waits for that transaction's
# bound; every later one is refused at once.
PROMPT_S = TRANSACTION_TIMEOUT_S + 2


SECOND = timedelta(seconds=1)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.mark.timeout(120)
def test_store_outage_is_a_503_then_unknown_time_and_nothing_is_lost(
    tmp_path: Path, launch: Launcher
) -> None:
    secantus = launch(SecantusProcess(tmp_path / "logs", tmp_path / "secantus-data"))
    server = ServerProcess(
        tmp_path / "data",
        store="mongodb",
        mongodb_uri=secantus.uri,
        mongodb_db="outage",
        interval_s=1.0,
        timeout_s=3.0,
        tick_s=0.2,
        log_dir=tmp_path / "logs",
    )
    ollama = FakeOllamaProcess(tmp_path / "logs")
    launch.together(server, ollama)
    agent_proc = launch(
        AgentProcess(
            tmp_path / "logs",
            server_url=server.base_url,
            ollama_url=ollama.base_url,
            enrollment_token=server.enrollment_token,
            client_id="outage-real",
        )
    )
    beating = SimulatedAgent(server, "outage-beating")
    silent = SimulatedAgent(server, "outage-silent")
    with server.client(timeout=30) as http:
        for agent in (beating, silent):
            assert agent.register(http).status_code == 201
        assert beating.heartbeat(http).status_code == 200
        wait_until(
            lambda: client_status(http, agent_proc.client_id) == "online",
            20,
            lambda: f"the real agent is {client_status(http, agent_proc.client_id)}",
        )

        secantus.stop()
        stopped = time.monotonic()

        refused: list[httpx.Response] = []
        slowest = 0.0

        def heartbeat_refused() -> bool:
            nonlocal slowest
            sent = time.monotonic()
            response = beating.heartbeat(http, seq=beating.seq + 1)
            slowest = max(slowest, time.monotonic() - sent)
            if response.status_code == 200:
                return False  # acknowledged before the store went: noted by the agent
            refused.append(response)
            return True

        wait_until(heartbeat_refused, 15, "heartbeats were still acknowledged")
        health = wait_until(
            lambda: (r := http.get("/health")).status_code == 503 and r,
            10,
            "/health did not show the store down",
        )
        assert health.json()["store"]["reachable"] is False
        assert health.json()["store"]["down_since"] is not None
        assert health.headers["Retry-After"]

        # Stay down longer than the timeout (3 s), refusing every heartbeat promptly.
        def outage_long_enough() -> bool:
            heartbeat_refused()
            return time.monotonic() - stopped > server.timeout_s + 2

        wait_until(outage_long_enough, 30, "the outage loop did not end", interval=0.3)
        assert {r.status_code for r in refused} == {503}, [r.text for r in refused]
        assert all(r.headers.get("Retry-After") for r in refused)
        assert {r.json()["code"] for r in refused} == {"store_unavailable"}
        assert slowest < PROMPT_S, f"a refused heartbeat took {slowest:.1f} s"

        secantus.start()
        back = time.monotonic()
        wait_until(
            lambda: beating.heartbeat(http, seq=beating.seq + 1).status_code == 200,
            10,
            "heartbeats were not acknowledged within 10 s of the store's return",
            interval=0.2,
        )
        recovery_s = time.monotonic() - back
        assert recovery_s < 10

        # The real agent backed off (503 + Retry-After) and is heartbeating again.
        wait_until(
            lambda: client_status(http, agent_proc.client_id) == "online",
            20,
            lambda: f"the real agent is {client_status(http, agent_proc.client_id)}",
        )

        counts = heartbeat_counts(http, beating)
        assert beating.acknowledged <= counts.keys()
        assert all(n == 1 for n in counts.values()), counts

        stops = all_events(http, type="ServerStopped")
        assert [e["data"]["reason"] for e in stops] == ["store unavailable"]
        started = all_events(http, type="ServerStarted")[-1]
        assert started["data"]["previous_shutdown"] == "store_outage"
        restarted_at = at(started["data"]["started_at"])

        # Nobody was timed out for the outage: the silent client (and any other that stays
        # quiet now) only one timeout window after the store's return, offline from then on.
        wait_until(lambda: client_status(http, silent.client_id) == "offline", 15, "not offline")
        timeouts = all_events(http, type="ClientTimedOut")
        assert silent.stream in {e["stream"] for e in timeouts}
        for event in timeouts:
            assert at(event["recorded_at"]) >= restarted_at + server.timeout_s * SECOND, event
        for agent in (beating, silent):
            intervals: list[dict[str, Any]] = http.get(f"/clients/{agent.client_id}/uptime").json()[
                "intervals"
            ]
            unknown = [i for i in intervals if i["status"] == "unknown"]
            assert unknown, intervals
            assert at(unknown[0]["start"]) == at(stops[0]["data"]["stopped_at"])
            offline = [i for i in intervals if i["status"] == "offline"]
            assert all(at(i["start"]) >= restarted_at for i in offline), intervals
