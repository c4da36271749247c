"""Two real servers on one MongoDB stand-in, an agent whose requests land on either: each
server's aggregate cache falls behind what the other records, and a stale cache re-reads the
stream before it refuses anything (a version conflict, a secret issued elsewhere, a new
session registered elsewhere after a clean stop)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.simulated_agent import SimulatedAgent, bearer
from tests.support.processes import Launcher, SecantusProcess
from tests.support.scale import heartbeats_in_log, instance

pytestmark = pytest.mark.mongodb

DB = "caches"


@pytest.mark.timeout(180)
def test_an_agent_moving_between_instances_is_never_refused_by_a_stale_cache(
    tmp_path: Path, launch: Launcher
) -> None:
    secantus = launch(SecantusProcess(tmp_path / "logs", tmp_path / "secantus"))
    a = instance(tmp_path, secantus, "a", DB)
    b = instance(tmp_path, secantus, "b", DB, tokens=a)
    launch.together(a, b)
    agent = SimulatedAgent(a, "roamer")
    with a.client(timeout=30) as on_a, b.client(timeout=30) as on_b:
        assert agent.register(on_a).status_code == 201
        # Alternating instances: each append meets a stream the other moved on.
        for i in range(12):
            response = agent.heartbeat(on_a if i % 2 else on_b)
            assert response.status_code == 200, response.text

        # The agent lost its state and enrolls again through A: a new secret, the old one
        # revoked. B cached the client with the old secret.
        agent.secret = None
        assert agent.register(on_a).status_code == 200
        response = agent.heartbeat(on_b)
        assert response.status_code == 200, response.text

        # A clean stop through B, then a restart (new session) registered through A: B cached
        # the client as stopped.
        assert on_b.post(
            f"/agents/{agent.client_id}/deregister", headers=bearer(agent.secret or "")
        ).status_code in (200, 204)
        agent.session_id = str(uuid.uuid4())
        assert agent.register(on_a).status_code == 200
        for client in (on_b, on_a, on_b):
            response = agent.heartbeat(client)
            assert response.status_code == 200, response.text

        # A revoked secret is still refused on both, after the re-read.
        old = agent.secret
        agent.secret = None
        assert agent.register(on_b).status_code == 200
        for client in (on_a, on_b):
            assert agent.heartbeat(client, token=old).status_code == 401

    stored = heartbeats_in_log(secantus, DB)
    acknowledged = {(agent.client_id, s, q) for s, q in agent.acknowledged}
    assert acknowledged <= set(stored)
    assert all(n == 1 for n in stored.values())
