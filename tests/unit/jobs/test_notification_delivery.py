"""The outbox and its delivery job with the real handlers, projectors and evaluator, the
in-memory notifier and a hand-moved clock: every notice reaches every target once, failures
are retried with backoff, given up after 24 h, and a crash repeats only the attempt in flight."""

from __future__ import annotations

from typing import Any

import pytest

from obt.bootstrap import make_codec
from obt.commands.alerts import ChangeAlertRule, CreateAlertRule
from obt.jobs.notifications import backoff
from obt.notify import Target
from obt.projections.alert_notices import NOTICES
from obt.store.memory import MemoryStore
from tests.support.fleet import Fleet

HOOK = {"url": "http://127.0.0.1:9/hook", "secret": "s"}
NOTIFY = {"urls": ["json://127.0.0.1:9/apprise"], "webhooks": [HOOK]}
STOPPED = {"kind": "status", "statuses": ["stopped"]}


@pytest.fixture
async def fleet() -> Fleet:
    f = Fleet(MemoryStore(make_codec()))
    await f.start()
    return f


async def stopped_client(fleet: Fleet, **fields: Any) -> str:
    saved = await fleet.alert_rules.create(
        CreateAlertRule(
            name="stopped",
            scope={},
            condition=STOPPED,
            notify=fields.pop("notify", NOTIFY),
            **fields,
        )
    )
    await fleet.register("a")
    await fleet.deregister("a")
    await fleet.evaluate(project=True)
    await fleet.project()
    return saved.rule_id


async def notices(fleet: Fleet) -> dict[str, dict[str, Any]]:
    await fleet.project()
    return {d["id"]: d for d in await fleet.store.find(NOTICES)}


def sent(fleet: Fleet) -> list[tuple[str, str]]:
    return [(t.kind, n.dedupe_key) for t, n in fleet.notifier.sent]


async def test_a_firing_reaches_every_target_once_with_the_contract_body(fleet: Fleet) -> None:
    rule_id = await stopped_client(fleet)
    key = f"{rule_id}/a/1"
    assert await fleet.deliver() == 2
    assert sorted(sent(fleet)) == [("apprise", key), ("webhook", key)]
    _, notice = fleet.notifier.sent[0]
    assert set(notice.body) == {
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
    assert notice.body["kind"] == "fired" and notice.body["status"] == "stopped"
    await fleet.project()
    assert await fleet.deliver() == 0  # delivered: never again
    doc = (await notices(fleet))[key]
    assert doc["state"] == "delivered"
    assert {d["state"] for d in doc["deliveries"].values()} == {"delivered"}
    assert all(
        d["target"].startswith(("webhook http://127.0.0.1/", "apprise json://"))
        for d in doc["deliveries"].values()
    )


async def test_failures_back_off_then_deliver_once(fleet: Fleet) -> None:
    rule_id = await stopped_client(fleet, notify={"webhooks": [HOOK]})
    key = f"{rule_id}/a/1"
    assert await fleet.deliver(failing="HTTP 503") == 1
    await fleet.project()
    assert await fleet.deliver() == 0  # not due before the backoff
    failed = await fleet.store.read_all(types=["NotificationFailed"])
    assert [e.data["attempt"] for e in failed] == [1]
    assert failed[0].data["error"] == "HTTP 503"
    for attempt in (2, 3):
        fleet.clock.advance(backoff(attempt - 1, 5.0, 3600).total_seconds())
        assert await fleet.deliver(failing="HTTP 503") == 1
        await fleet.project()
    fleet.clock.advance(backoff(3, 5.0, 3600).total_seconds())
    assert await fleet.deliver() == 1
    await fleet.project()
    fleet.clock.advance(3600)
    assert await fleet.deliver() == 0
    assert sent(fleet) == [("webhook", key)]
    attempts = await fleet.store.read_all(types=["NotificationFailed", "NotificationDelivered"])
    assert [(e.type, e.data["attempt"]) for e in attempts] == [
        ("NotificationFailed", 1),
        ("NotificationFailed", 2),
        ("NotificationFailed", 3),
        ("NotificationDelivered", 4),
    ]
    doc = (await notices(fleet))[key]
    (delivery,) = doc["deliveries"].values()
    assert delivery["attempts"] == 4 and delivery["last_error"] == "HTTP 503"


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, 5, 60).total_seconds() for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


async def test_given_up_after_24_hours(fleet: Fleet) -> None:
    rule_id = await stopped_client(fleet, notify={"webhooks": [HOOK]})
    rounds = 0
    while await fleet.deliver(failing="connection refused"):
        rounds += 1
        await fleet.project()
        fleet.clock.advance(3600)
    doc = (await notices(fleet))[f"{rule_id}/a/1"]
    assert doc["state"] == "failed"
    (delivery,) = doc["deliveries"].values()
    assert delivery["next_attempt_at"] is None and 20 < rounds <= 30


async def test_resolved_and_reminder_notices_have_their_own_keys(fleet: Fleet) -> None:
    rule_id = await stopped_client(fleet, notify={"webhooks": [HOOK]}, remind_every_s=600)
    fleet.clock.advance(600)
    await fleet.evaluate(project=True)
    await fleet.register("a", new_session=True)
    await fleet.evaluate(project=True)
    await fleet.project()
    assert await fleet.deliver() == 3
    key = f"{rule_id}/a/1"
    assert sorted(k for _, k in sent(fleet)) == [key, f"{key}/reminder/1", f"{key}/resolved"]
    kinds = {n.dedupe_key: n.body["kind"] for _, n in fleet.notifier.sent}
    assert kinds[f"{key}/resolved"] == "resolved" and kinds[f"{key}/reminder/1"] == "reminder"


async def test_no_resolve_notice_when_the_rule_says_so(fleet: Fleet) -> None:
    await stopped_client(fleet, notify={"webhooks": [HOOK]}, send_resolved=False)
    await fleet.register("a", new_session=True)
    await fleet.evaluate(project=True)
    await fleet.project()
    assert await fleet.deliver() == 1  # the firing only
    assert [n.body["kind"] for _, n in fleet.notifier.sent] == ["fired"]


async def test_a_removed_target_is_given_up_not_sent(fleet: Fleet) -> None:
    rule_id = await stopped_client(fleet, notify={"webhooks": [HOOK]})
    await fleet.alert_rules.change(
        ChangeAlertRule(
            rule_id=rule_id,
            name="stopped",
            scope={},
            condition=STOPPED,
            notify={"webhooks": [{"url": "http://127.0.0.1:9/other", "secret": "t"}]},
        )
    )
    await fleet.project()
    assert await fleet.deliver() == 1
    assert fleet.notifier.attempts == 0
    failed = await fleet.store.read_all(types=["NotificationFailed"])
    assert failed[0].data["next_attempt_at"] is None
    assert "removed" in failed[0].data["error"]


async def test_a_crash_repeats_only_the_attempt_in_flight(fleet: Fleet) -> None:
    """The job sends, then dies before recording: after a restart exactly that attempt is
    made again, and nothing that was recorded is."""
    rule_id = await stopped_client(fleet, notify={"webhooks": [HOOK]})
    await fleet.register("b")
    await fleet.deregister("b")
    await fleet.evaluate(project=True)
    await fleet.project()
    await fleet.deliver()  # both firings delivered and recorded
    assert sorted(k for _, k in sent(fleet)) == [f"{rule_id}/a/1", f"{rule_id}/b/1"]

    async def dies_before_recording(*_: Any) -> int:
        return 0  # the process died between the send and its record: nothing lands

    await fleet.register("a", new_session=True)
    await fleet.evaluate(project=True)
    await fleet.project()
    fleet.delivery._record = dies_before_recording  # type: ignore[method-assign]
    await fleet.deliver()
    assert sent(fleet)[-1] == ("webhook", f"{rule_id}/a/1/resolved")

    await fleet.restart_server(clean=False, down_for_s=5)  # a fresh job and notifier
    await fleet.project()
    assert await fleet.deliver() == 1
    assert sent(fleet) == [("webhook", f"{rule_id}/a/1/resolved")]
    await fleet.project()
    assert await fleet.deliver() == 0
    recorded = await fleet.store.read_all(types=["NotificationDelivered"])
    assert sorted(e.data["notice_id"] for e in recorded) == [
        f"{rule_id}/a/1",
        f"{rule_id}/a/1/resolved",
        f"{rule_id}/b/1",
    ]


def test_targets_are_named_without_their_credentials() -> None:
    hook = Target("webhook", "https://hooks.example/services/T0/B0/SECRET", "s")
    assert hook.label == "webhook https://hooks.example/…" and "SECRET" not in hook.id
    assert Target("apprise", "tgram://bottoken/chat").label == "apprise tgram://…"
