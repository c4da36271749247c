"""The `alert_rules` read model: every rule as it stands now (deleted rules are gone).

Kept in memory too: the alert evaluator reads the rules from here on every tick.
Documents hold the webhook secrets (delivery signs with them); the API masks them.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from obt.domain.events import AlertRuleChanged, AlertRuleCreated, AlertRuleDeleted
from obt.projections.base import HEARTBEAT, Batch, Envelope, Projector, iso
from obt.store.ports import Doc, ReadStore

ALERT_RULES = "alert_rules"


class AlertRulesProjector(Projector):
    name: ClassVar[str] = "alert_rules"
    collections: ClassVar[tuple[str, ...]] = (ALERT_RULES,)

    def __init__(self) -> None:
        self.rules: dict[str, Doc] = {}

    async def load(self, store: ReadStore) -> None:
        self.rules = {d["id"]: d for d in await store.find(ALERT_RULES)}

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT:
            return
        event, pos = envelope.event, envelope.position
        match event:
            case AlertRuleCreated() | AlertRuleChanged():
                previous = self.rules.get(event.rule_id)
                created_at = previous["created_at"] if previous else iso(envelope.at)
                doc: Doc = {
                    "id": event.rule_id,
                    "name": event.name,
                    "scope": event.scope,
                    "condition": event.condition,
                    "notify": event.notify,
                    "send_resolved": event.send_resolved,
                    "remind_every_s": event.remind_every_s,
                    "created_at": created_at,
                    "updated_at": iso(envelope.at),
                    "position": pos,
                }
                self.rules[event.rule_id] = doc
                # Sorted by creation: a list of rules keeps its order when one is edited.
                batch.put(ALERT_RULES, event.rule_id, doc, sort=_created(doc))
                batch.changed("alert_rule", event.rule_id, pos)
            case AlertRuleDeleted():
                if self.rules.pop(event.rule_id, None) is not None:
                    batch.delete(ALERT_RULES, event.rule_id)
                    batch.changed("alert_rule", event.rule_id, pos)
            case _:
                pass


def _created(doc: Doc) -> float:
    return datetime.fromisoformat(doc["created_at"]).timestamp()
