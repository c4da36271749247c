"""The outbox: `alert_notices`, one document per notice (fired, reminder, resolved) with a
delivery per target of its rule, and `alert_notice_targets`, each rule's targets (ids and
masked labels, never addresses or secrets).

A notice's targets are the rule's targets when the alert event was recorded; each delivery
moves on only by NotificationDelivered / NotificationFailed, so what is still owed after a
crash is exactly what the log says is owed. The delivery job reads `pending` from memory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from obt.domain.events import (
    AlertFired,
    AlertReminded,
    AlertResolved,
    AlertRuleChanged,
    AlertRuleCreated,
    AlertRuleDeleted,
    NotificationDelivered,
    NotificationFailed,
)
from obt.notify import targets_of
from obt.projections.base import HEARTBEAT, Batch, Envelope, Projector, iso
from obt.store.ports import Doc, ReadStore

NOTICES = "alert_notices"
NOTICE_TARGETS = "alert_notice_targets"


class AlertNoticesProjector(Projector):
    name: ClassVar[str] = "alert_notices"
    collections: ClassVar[tuple[str, ...]] = (NOTICES, NOTICE_TARGETS)

    def __init__(self) -> None:
        self.targets: dict[str, list[Doc]] = {}  # rule id -> [{id, label}]
        self.pending: dict[str, Doc] = {}  # notice id -> document, while a delivery is owed
        self._fired: dict[str, Doc] = {}  # firing key -> its fired notice's body
        self._reminders: dict[str, int] = {}  # firing key -> reminders so far

    async def load(self, store: ReadStore) -> None:
        self.targets = {d["rule_id"]: d["targets"] for d in await store.find(NOTICE_TARGETS)}
        self.pending, self._fired, self._reminders = {}, {}, {}
        order = {"fired": 0, "reminder": 1, "resolved": 2}
        docs = await store.find(NOTICES)
        for doc in sorted(docs, key=lambda d: (d["created_at"], order.get(d["kind"], 3))):
            self._remember(doc)

    def _remember(self, doc: Doc) -> None:
        key = doc["dedupe_key"]
        if doc["kind"] == "fired":
            self._fired[key] = doc["body"]
        elif doc["kind"] == "reminder":
            self._reminders[key] = self._reminders.get(key, 0) + 1
        elif doc["kind"] == "resolved":
            self._fired.pop(key, None)
            self._reminders.pop(key, None)
        if doc["state"] == "pending":
            self.pending[doc["id"]] = doc

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT:
            return
        event = envelope.event
        match event:
            case AlertRuleCreated() | AlertRuleChanged():
                targets = [{"id": t.id, "label": t.label} for t in targets_of(event.notify)]
                self.targets[event.rule_id] = targets
                batch.put(
                    NOTICE_TARGETS,
                    event.rule_id,
                    {"rule_id": event.rule_id, "targets": targets, "position": envelope.position},
                )
            case AlertRuleDeleted():
                if self.targets.pop(event.rule_id, None) is not None:
                    batch.delete(NOTICE_TARGETS, event.rule_id)
            case AlertFired():
                body = {
                    "kind": "fired",
                    "rule_id": event.rule_id,
                    "rule_name": event.rule_name,
                    "client_id": event.client_id,
                    "hostname": event.hostname,
                    "status": event.status,
                    "since": iso(event.since),
                    "at": iso(envelope.at),
                    "dedupe_key": event.dedupe_key,
                }
                self._notice(envelope, event.dedupe_key, event.dedupe_key, body, batch)
            case AlertReminded():
                n = self._reminders.get(event.dedupe_key, 0) + 1
                notice_id = f"{event.dedupe_key}/reminder/{n}"
                body = self._follow_up("reminder", event.dedupe_key, event.status, envelope)
                body["dedupe_key"] = notice_id
                self._notice(envelope, notice_id, event.dedupe_key, body, batch)
            case AlertResolved():
                if event.notify:
                    notice_id = f"{event.dedupe_key}/resolved"
                    body = self._follow_up("resolved", event.dedupe_key, event.status, envelope)
                    body["dedupe_key"] = notice_id
                    self._notice(envelope, notice_id, event.dedupe_key, body, batch)
                else:
                    self._fired.pop(event.dedupe_key, None)
                    self._reminders.pop(event.dedupe_key, None)
            case NotificationDelivered():
                self._attempted(
                    envelope,
                    event.notice_id,
                    event.target_id,
                    batch,
                    state="delivered",
                    attempts=event.attempt,
                    delivered_at=iso(envelope.at),
                    next_attempt_at=None,
                )
            case NotificationFailed():
                self._attempted(
                    envelope,
                    event.notice_id,
                    event.target_id,
                    batch,
                    state="pending" if event.next_attempt_at else "failed",
                    attempts=event.attempt,
                    last_error=event.error,
                    next_attempt_at=iso(event.next_attempt_at),
                )
            case _:
                pass

    def _follow_up(self, kind: str, key: str, status: str, envelope: Envelope) -> dict[str, Any]:
        fired = self._fired.get(key, {})
        return {
            "kind": kind,
            "rule_id": fired.get("rule_id", key.split("/", 1)[0]),
            "rule_name": fired.get("rule_name"),
            "client_id": fired.get("client_id", envelope.data.get("client_id")),
            "hostname": fired.get("hostname"),
            "status": status,
            "since": fired.get("since"),
            "at": iso(envelope.at),
        }

    def _notice(
        self, envelope: Envelope, notice_id: str, key: str, body: dict[str, Any], batch: Batch
    ) -> None:
        deliveries = {
            t["id"]: {
                "target": t["label"],
                "state": "pending",
                "attempts": 0,
                "last_error": None,
                "next_attempt_at": None,
                "delivered_at": None,
            }
            for t in self.targets.get(body["rule_id"], [])
        }
        doc: Doc = {
            "id": notice_id,
            "dedupe_key": key,
            "kind": body["kind"],
            "rule_id": body["rule_id"],
            "client_id": body["client_id"],
            "body": body,
            "state": "pending" if deliveries else "none",
            "created_at": iso(envelope.at),
            "deliveries": deliveries,
            "position": envelope.position,
        }
        self._remember(doc)
        self._put(doc, batch)

    def _attempted(
        self, envelope: Envelope, notice_id: str, target_id: str, batch: Batch, **fields: Any
    ) -> None:
        doc = self.pending.get(notice_id)
        if doc is None or target_id not in doc["deliveries"]:
            return  # a late record for a notice already settled (another instance's)
        doc["deliveries"][target_id].update(fields)
        states = {d["state"] for d in doc["deliveries"].values()}
        if "pending" not in states:
            doc["state"] = "failed" if "failed" in states else "delivered"
            del self.pending[notice_id]
        doc["position"] = envelope.position
        self._put(doc, batch)

    def _put(self, doc: Doc, batch: Batch) -> None:
        created = datetime.fromisoformat(doc["created_at"]).timestamp()
        batch.put(NOTICES, doc["id"], doc, client_id=doc["client_id"], sort=created)
        batch.changed("alert_notice", doc["id"], doc["position"])
