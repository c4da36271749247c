"""Alert notices from a real server to a real local receiver: down for a while and then back,
every notice arrives exactly once per dedupe key with a signature the receiver verifies; the
same notices reach Apprise's json:// target; a server killed with SIGKILL in the middle of a
delivery repeats that one delivery and nothing else."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.simulated_agent import SimulatedAgent, bearer
from tests.support.processes import ServerProcess, wait_until
from tests.support.receiver import Receiver

SECRET = "receiver-secret-0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    try:
        yield r
    finally:
        r.release.set()
        r.stop()


def create_rule(server: ServerProcess, receiver: Receiver, **notify: Any) -> str:
    with server.client(server.admin_token) as http:
        r = http.post(
            "/alerts/rules",
            json={
                "name": "agent stopped",
                "condition": {"kind": "status", "statuses": ["stopped"]},
                "notify": notify
                or {
                    "urls": [receiver.apprise_url],
                    "webhooks": [{"url": receiver.webhook_url, "secret": SECRET}],
                },
            },
        )
        assert r.status_code == 201, r.text
        rule_id: str = r.json()["id"]
        return rule_id


def stop_agents(server: ServerProcess, names: list[str]) -> list[SimulatedAgent]:
    agents = [SimulatedAgent(server, name) for name in names]
    with server.client() as http:
        for agent in agents:
            assert agent.register(http).status_code == 201
            assert agent.secret is not None
            answer = http.post(
                f"/agents/{agent.client_id}/deregister", headers=bearer(agent.secret)
            )
            assert answer.status_code == 204, answer.text
    return agents


def events(server: ServerProcess, types: str) -> list[dict[str, Any]]:
    with server.client() as http:
        items: list[dict[str, Any]] = http.get(
            "/events", params={"type": types, "limit": 1000}
        ).json()["items"]
        return items


def at_least(items: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return items if len(items) >= n else []


def test_a_receiver_down_for_a_while_gets_every_notice_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    server = ServerProcess(tmp_path / "data")
    with server.serving():
        rule_id = create_rule(server, receiver)
        agents = stop_agents(server, ["n1", "n2", "n3"])
        keys = {f"{rule_id}/{a.client_id}/1" for a in agents}

        # The receiver is down: the first attempts fail and are recorded with a retry time.
        def first_attempts() -> list[dict[str, Any]]:
            firsts = [e for e in events(server, "NotificationFailed") if e["data"]["attempt"] == 1]
            return at_least(firsts, 6)  # each notice to each target

        failed = wait_until(first_attempts, 60, lambda: f"{events(server, 'NotificationFailed')}")
        assert all(e["data"]["next_attempt_at"] for e in failed)
        assert not events(server, "NotificationDelivered")
        receiver.start()
        wait_until(
            lambda: set(receiver.webhooks) == keys and len(receiver.apprise) == 3,
            60,
            lambda: f"webhooks {receiver.webhooks}, apprise {len(receiver.apprise)}",
        )
        # The agents come back: a resolve notice each.
        with server.client() as http:
            for agent in agents:
                assert agent.register(http).status_code == 200
        resolved = {f"{k}/resolved" for k in keys}
        wait_until(
            lambda: set(receiver.webhooks) == keys | resolved,
            30,
            lambda: f"webhooks {receiver.webhooks}",
        )
        delivered = wait_until(
            lambda: at_least(events(server, "NotificationDelivered"), 12),
            30,
            "every delivery recorded",
        )
        assert len(delivered) == 12
        # Let any duplicate that would come, come: the outbox is settled and sends nothing.
        with server.client(server.admin_token) as http:
            alerts = http.get("/alerts").json()["items"]
            tested = http.post(f"/alerts/rules/{rule_id}/test").json()["items"]
        assert {a["state"] for a in alerts} == {"resolved"}
        # History shows every notice with its delivery attempts.
        notices = alerts[0]["notices"]
        assert [n["kind"] for n in notices] == ["fired", "resolved"]
        fired = {d["target"].split()[0]: d for d in notices[0]["deliveries"]}
        assert fired["webhook"]["state"] == "delivered" and fired["webhook"]["attempts"] >= 2
        assert fired["webhook"]["last_error"] is not None  # the failed attempts are shown
        assert "SECRET" not in str(alerts) and SECRET not in str(alerts)
        # The test button: straight to every target, nothing recorded.
        assert sorted(t["target"].split()[0] for t in tested) == ["apprise", "webhook"]
        assert all(t["error"] is None for t in tested)
        assert len(events(server, "NotificationDelivered")) == 12

    tests = [k for k in receiver.webhooks if "/test/" in k]
    assert len(tests) == 1
    assert all(count == 1 for count in receiver.webhooks.values()), receiver.webhooks
    assert receiver.bad_signatures == 0
    body = receiver.bodies[f"{rule_id}/n1/1"]
    assert body["kind"] == "fired" and body["status"] == "stopped" and body["client_id"] == "n1"
    assert set(body) == {
        "kind",
        "rule_id",
        "rule_name",
        "client_id",
        "hostname",
        "status",
        "since",
        "at",
        "dedupe_key",
    }
    titles = sorted(a["title"] for a in receiver.apprise if "host-n" in a["title"])
    assert len(titles) == 6 and len(receiver.apprise) == 7  # and the test notice
    assert sum(f"{rule_id}/n1/1" in a["message"] for a in receiver.apprise) == 2


def test_kill_9_mid_delivery_repeats_only_that_delivery(tmp_path: Path, receiver: Receiver) -> None:
    server = ServerProcess(tmp_path / "data")
    server.start()
    try:
        rule_id = create_rule(
            server, receiver, webhooks=[{"url": receiver.webhook_url, "secret": SECRET}]
        )
        receiver.start()
        stop_agents(server, ["k1"])
        wait_until(lambda: receiver.webhooks, 30, "the first notice never arrived")
        wait_until(lambda: events(server, "NotificationDelivered"), 30, "not recorded")
        receiver.hold = True
        stop_agents(server, ["k2"])
        assert receiver.held.wait(30), "the second delivery never started"
        server.kill()  # SIGKILL while the receiver holds the request
        receiver.hold = False
        receiver.release.set()  # it answers 200 to a dead server: never recorded
        wait_until(lambda: receiver.webhooks[f"{rule_id}/k2/1"] == 1, 10, "held notice lost")
        server.start()
        wait_until(
            lambda: receiver.webhooks[f"{rule_id}/k2/1"] == 2,
            60,
            lambda: f"the delivery in flight was not repeated: {receiver.webhooks}",
        )
        wait_until(lambda: len(events(server, "NotificationDelivered")) == 2, 30, "recorded")
    finally:
        server.stop()
    assert receiver.webhooks == {f"{rule_id}/k1/1": 1, f"{rule_id}/k2/1": 2}
    assert receiver.bad_signatures == 0


def test_a_wrong_secret_is_refused_by_the_receiver_and_retried(
    tmp_path: Path, receiver: Receiver
) -> None:
    server = ServerProcess(tmp_path / "data")
    with server.serving():
        receiver.start()
        create_rule(server, receiver, webhooks=[{"url": receiver.webhook_url, "secret": "wrong"}])
        stop_agents(server, ["w1"])
        failed = wait_until(lambda: events(server, "NotificationFailed"), 30, "no attempt")
        assert failed[0]["data"]["error"] == "HTTP 401"
        assert receiver.bad_signatures >= 1 and not receiver.webhooks


class Heartbeats:
    """Agents heartbeating from a thread every `every_s`, through a server restart (refused
    heartbeats are simply sent again next time); one can be silenced."""

    def __init__(self, server: ServerProcess, agents: list[SimulatedAgent], every_s: float):
        self.server, self.agents, self.every_s = server, agents, every_s
        self.silenced: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.server.client(timeout=2) as http:
            while not self._stop.wait(self.every_s):
                for agent in self.agents:
                    if agent.client_id not in self.silenced:
                        with contextlib.suppress(httpx.HTTPError):
                            agent.heartbeat(http)

    def __enter__(self) -> Heartbeats:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def settled(server: ServerProcess) -> bool:
    with server.client() as http:
        health = http.get("/health").json()
        statuses = {c["status"] for c in http.get("/clients").json()["items"]}
    grace = datetime.fromisoformat(health["scheduler"]["grace_until"])
    now = datetime.fromisoformat(health["server_time"])
    return statuses == {"online"} and now > grace + timedelta(seconds=3)


def test_a_server_restart_sets_off_no_offline_alert(tmp_path: Path, receiver: Receiver) -> None:
    server = ServerProcess(tmp_path / "data")  # heartbeat interval 1 s, timeout 3 s
    server.start()
    try:
        receiver.start()
        with server.client(server.admin_token) as http:
            rule = http.post(
                "/alerts/rules",
                json={
                    "name": "offline",
                    "condition": {"kind": "status", "statuses": ["offline"]},
                    "notify": {"webhooks": [{"url": receiver.webhook_url, "secret": SECRET}]},
                },
            )
            assert rule.status_code == 201, rule.text
        agents = [SimulatedAgent(server, f"r{i}") for i in range(3)]
        with server.client() as http:
            for agent in agents:
                assert agent.register(http).status_code == 201
        with Heartbeats(server, agents, every_s=0.5) as beats:
            server.restart()  # clean stop, then start: every client unknown for the gap
            # Every client online again, and the server's clock past the start-up grace (one
            # timeout window) by a few evaluations.
            wait_until(lambda: settled(server), 30, "the fleet did not settle after the start")
            assert not events(server, "AlertFired"), "a restart set off an alert"
            # The test can fail: a client that really goes silent is alerted.
            beats.silenced.add("r0")
            fired = wait_until(lambda: events(server, "AlertFired"), 30, "r0 never fired")
            assert [e["data"]["client_id"] for e in fired] == ["r0"]
        wait_until(lambda: receiver.webhooks, 30, "the notice never arrived")
    finally:
        server.stop()
    assert list(receiver.webhooks) == [fired[0]["data"]["dedupe_key"]]
