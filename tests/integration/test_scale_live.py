"""Three real servers on one MongoDB stand-in: a change recorded through one instance shows in
the live feed (and the API) of the others, and only the jobs lease holder stores read models
(the others never race its commits)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from tests.integration.simulated_agent import SimulatedAgent
from tests.support.processes import Launcher, SecantusProcess, start_together, wait_until
from tests.support.scale import instance
from tests.support.sse import SseReader

pytestmark = pytest.mark.mongodb

DB = "live"


def holder(secantus: SecantusProcess) -> str | None:
    with MongoClient(secantus.uri, serverSelectionTimeoutMS=5000) as client:
        doc = client[DB].leases.find_one({"_id": "jobs"})
    return None if doc is None else str(doc["holder"])


@pytest.mark.timeout(240)
def test_a_change_through_one_instance_shows_on_the_others_live_feeds(
    tmp_path: Path, launch: Launcher
) -> None:
    secantus = launch(SecantusProcess(tmp_path / "logs", tmp_path / "secantus"))
    first = instance(tmp_path, secantus, "i0", DB)
    servers = [first] + [instance(tmp_path, secantus, f"i{i}", DB, tokens=first) for i in (1, 2)]
    launch.launched += servers
    start_together(*servers)
    writer, watchers = servers[0], servers[1:]
    agent = SimulatedAgent(writer, "seen-everywhere")
    readers = [SseReader(f"{w.api_url}/live?watch=client:{agent.client_id}") for w in watchers]
    try:
        with writer.client(timeout=30) as http:
            assert agent.register(http).status_code == 201
            for reachable, status in ((False, "degraded"), (True, "online"), (False, "degraded")):
                # Only what arrives after this heartbeat counts: an earlier message may carry
                # the same status (degraded, then online, then degraded again).
                seen = [len(reader.messages) for reader in readers]
                assert agent.heartbeat(http, reachable=reachable).status_code == 200
                for reader, watcher, since in zip(readers, watchers, seen, strict=True):
                    wait_until(
                        lambda r=reader, s=status, n=since: any(
                            m["event"] == "client" and json.loads(m["data"])["status"] == s
                            for m in r.messages[n:]
                        ),
                        10,
                        f"{watcher.name}'s live feed did not show {status}",
                    )
                    shown = httpx.get(f"{watcher.api_url}/clients/{agent.client_id}", timeout=10)
                    assert shown.json()["status"] == status
    finally:
        for reader in readers:
            reader.close()

    # One holder; the others project into memory only, so they never race its commits.
    name = holder(secantus)
    assert name in {s.name for s in servers}
    for server in servers:
        text = "".join(path.read_text() for path in server.logs if path.exists())
        if server.name != name:
            assert "advanced by another runner" not in text, f"{server.name} stored read models"
