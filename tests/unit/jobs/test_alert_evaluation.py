"""Alert evaluation with the real handlers, projectors and evaluator on the in-memory store and a
hand-moved clock: when alerts fire, remind and resolve, and when they must not."""

from __future__ import annotations

from typing import Any

import pytest

from obt.bootstrap import make_codec
from obt.commands.alerts import CreateAlertRule, DeleteAlertRule
from obt.jobs.alerts import alert_evaluator
from obt.projections.alerts import ALERTS
from obt.store.memory import MemoryStore
from tests.support.fleet import Fleet

WEBHOOK = {"webhooks": [{"url": "http://127.0.0.1:9/hook", "secret": "s"}]}


@pytest.fixture
async def fleet() -> Fleet:
    f = Fleet(MemoryStore(make_codec()))
    await f.start()
    return f


async def rule(fleet: Fleet, condition: dict[str, Any], **fields: Any) -> str:
    saved = await fleet.alert_rules.create(
        CreateAlertRule(
            name="r", scope=fields.pop("scope", {}), condition=condition, notify=WEBHOOK, **fields
        )
    )
    await fleet.project()
    return saved.rule_id


async def tick(fleet: Fleet) -> list[tuple[str, str, str]]:
    """Project, evaluate, project: the (type, client, dedupe key) of what was appended."""
    await fleet.project()
    head = await fleet.store.head()
    await fleet.evaluate()
    await fleet.project()
    return [
        (e.type, e.data["client_id"], e.data["dedupe_key"])
        for e in await fleet.store.read_all(after=head, types=ALERT_TYPES)
    ]


ALERT_TYPES = ("AlertFired", "AlertReminded", "AlertResolved")


async def test_offline_fires_after_for_s_once_and_resolves_on_return(fleet: Fleet) -> None:
    rule_id = await rule(fleet, {"kind": "status", "statuses": ["offline"], "for_s": 60})
    await fleet.register("a")
    await fleet.register("b")
    fleet.clock.advance(31)
    await fleet.heartbeat("b")
    await fleet.sweep()  # a times out: offline since its last heartbeat + 10 s
    assert await tick(fleet) == []  # offline for 21 s only
    fleet.clock.advance(38)
    assert await tick(fleet) == []  # 59 s
    fleet.clock.advance(1)
    assert await tick(fleet) == [("AlertFired", "a", f"{rule_id}/a/1")]
    fleet.clock.advance(600)
    assert await tick(fleet) == []  # once per firing (no reminders asked for)

    firing = await fleet.store.get(ALERTS, f"{rule_id}/a/1")
    assert firing is not None and firing["state"] == "firing" and firing["status"] == "offline"

    await fleet.heartbeat("a")
    assert await tick(fleet) == [("AlertResolved", "a", f"{rule_id}/a/1")]
    resolved = await fleet.store.get(ALERTS, f"{rule_id}/a/1")
    assert resolved is not None and resolved["state"] == "resolved"
    assert resolved["resolve_reason"] == "cleared"

    # The next silence is a new firing with a new dedupe key; b, silent since long, fires
    # its first.
    fleet.clock.advance(100)
    await fleet.sweep()
    assert sorted(await tick(fleet)) == [
        ("AlertFired", "a", f"{rule_id}/a/2"),
        ("AlertFired", "b", f"{rule_id}/b/1"),
    ]


async def test_a_server_restart_sets_off_nothing_and_clears_nothing(fleet: Fleet) -> None:
    await rule(fleet, {"kind": "status", "statuses": ["offline", "stopped"]})
    for cid in ("a", "b", "c"):
        await fleet.register(cid)
    await fleet.deregister("c")
    fired = await tick(fleet)
    assert [(t, c) for t, c, _ in fired] == [("AlertFired", "c")]

    # Down for an hour: nobody heartbeats meanwhile. Every client is unknown after the start.
    await fleet.restart_server(clean=False, down_for_s=3600)
    assert await tick(fleet) == []
    fleet.clock.advance(20)  # inside the start-up grace
    await fleet.heartbeat("a")
    assert await fleet.sweep() == []
    assert await tick(fleet) == []
    # b never came back within the grace: a real silence, and alerted once.
    fleet.clock.advance(15)
    assert await fleet.sweep() == ["b"]
    assert [(t, c) for t, c, _ in await tick(fleet)] == [("AlertFired", "b")]
    # c was stopped before the outage and is still: its alert went on firing throughout.
    alerts = {d["client_id"]: d["state"] for d in await fleet.store.find(ALERTS)}
    assert alerts == {"b": "firing", "c": "firing"}


async def test_two_evaluators_fire_one_alert(fleet: Fleet) -> None:
    await rule(fleet, {"kind": "status", "statuses": ["stopped"]})
    await fleet.register("a")
    await fleet.deregister("a")
    await fleet.project()
    other = alert_evaluator(fleet.store, fleet.clock, fleet.runner, fleet.repo, "other")
    assert await fleet.evaluate() == 1
    assert await other.run_once() == 0  # same read model, not caught up: its append loses
    assert other.lost_races == 1
    await fleet.project()
    assert await other.run_once() == 0  # caught up: nothing left to do
    assert len(await fleet.store.read_all(types=["AlertFired"])) == 1


async def test_reminders_and_a_deleted_rule(fleet: Fleet) -> None:
    rule_id = await rule(
        fleet,
        {"kind": "status", "statuses": ["stopped"]},
        remind_every_s=600,
        send_resolved=False,
    )
    await fleet.register("a")
    await fleet.deregister("a")
    assert len(await tick(fleet)) == 1
    fleet.clock.advance(599)
    assert await tick(fleet) == []
    fleet.clock.advance(1)
    assert await tick(fleet) == [("AlertReminded", "a", f"{rule_id}/a/1")]
    fleet.clock.advance(300)
    assert await tick(fleet) == []
    await fleet.alert_rules.delete(DeleteAlertRule(rule_id=rule_id))
    assert await tick(fleet) == [("AlertResolved", "a", f"{rule_id}/a/1")]
    resolved = await fleet.store.read_all(types=["AlertResolved"])
    assert resolved[0].data["reason"] == "rule_deleted" and resolved[0].data["notify"] is False
    doc = await fleet.store.get(ALERTS, f"{rule_id}/a/1")
    assert doc is not None and doc["reminders"] == 1


async def test_scope_by_label(fleet: Fleet) -> None:
    await rule(fleet, {"kind": "status", "statuses": ["stopped"]}, scope={"labels": {"rack": "b"}})
    for cid in ("a", "b"):
        await fleet.register(cid)
        await fleet.deregister(cid)
    assert [c for _, c, _ in await tick(fleet)] == ["b"]


async def test_model_missing_waits_for_a_model_report_and_for_s(fleet: Fleet) -> None:
    await rule(fleet, {"kind": "model_missing", "model": "llama3", "for_s": 30})
    await fleet.register("a")
    await fleet.register("b")
    assert await tick(fleet) == []  # no model report yet: nothing known to be missing
    await fleet.models("a", {"llama3:latest": "sha256:1"})
    await fleet.models("b", {"qwen": "sha256:2"})
    assert await tick(fleet) == []  # b lacks it, but not yet for 30 s
    fleet.clock.advance(30)
    await fleet.heartbeat("a")
    await fleet.heartbeat("b")
    assert [(t, c) for t, c, _ in await tick(fleet)] == [("AlertFired", "b")]
    await fleet.models("b", {"qwen": "sha256:2", "llama3": "sha256:1"})
    assert [(t, c) for t, c, _ in await tick(fleet)] == [("AlertResolved", "b")]


async def test_digest_drift_points_at_the_odd_host(fleet: Fleet) -> None:
    await rule(fleet, {"kind": "digest_drift", "model": "llama3"})
    for cid, digest in (("a", "sha256:1"), ("b", "sha256:1"), ("c", "sha256:9")):
        await fleet.register(cid)
        await fleet.models(cid, {"llama3": digest})
    assert [(t, c) for t, c, _ in await tick(fleet)] == [("AlertFired", "c")]
    await fleet.models("c", {"llama3": "sha256:1"})
    assert [(t, c) for t, c, _ in await tick(fleet)] == [("AlertResolved", "c")]
