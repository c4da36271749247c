"""The `alerts` read model (one document per firing: open or resolved) and `alert_streams` (per
(rule, client) pair: its stream version, how often it fired, the open firing).

The evaluator reads the pairs from memory to append at the right stream version; the API
lists firing alerts from memory and history from the store, newest first.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from obt.domain.alerts_conditions import Firing
from obt.domain.events import AlertFired, AlertReminded, AlertResolved
from obt.projections.base import HEARTBEAT, Batch, Envelope, Projector, iso
from obt.store.ports import Doc, ReadStore

ALERTS = "alerts"
ALERT_STREAMS = "alert_streams"


def pair_key(rule_id: str, client_id: str) -> str:
    return f"{rule_id}/{client_id}"


def firing_of(doc: Doc | None) -> Firing:
    if doc is None:
        return Firing()
    last = doc.get("last_notice_at")
    return Firing(
        version=doc["version"],
        firings=doc["firings"],
        open_key=doc.get("open_key"),
        last_notice_at=datetime.fromisoformat(last) if last else None,
    )


class AlertsProjector(Projector):
    name: ClassVar[str] = "alerts"
    collections: ClassVar[tuple[str, ...]] = (ALERTS, ALERT_STREAMS)

    def __init__(self) -> None:
        self.pairs: dict[str, Doc] = {}  # pair_key -> alert_streams document
        self.open: dict[str, Doc] = {}  # dedupe key -> alerts document, while firing

    async def load(self, store: ReadStore) -> None:
        self.pairs = {
            pair_key(d["rule_id"], d["client_id"]): d for d in await store.find(ALERT_STREAMS)
        }
        wanted = {d["open_key"] for d in self.pairs.values() if d.get("open_key")}
        self.open = {}
        for key in wanted:
            doc = await store.get(ALERTS, key)
            if doc is not None:
                self.open[key] = doc

    def firing(self, rule_id: str, client_id: str) -> Firing:
        return firing_of(self.pairs.get(pair_key(rule_id, client_id)))

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT:
            return
        event, pos, at = envelope.event, envelope.position, envelope.at
        match event:
            case AlertFired():
                doc: Doc = {
                    "dedupe_key": event.dedupe_key,
                    "rule_id": event.rule_id,
                    "rule_name": event.rule_name,
                    "client_id": event.client_id,
                    "hostname": event.hostname,
                    "condition": event.condition,
                    "detail": event.detail,
                    "state": "firing",
                    "status": event.status,
                    "since": iso(event.since),
                    "fired_at": iso(at),
                    "reminders": 0,
                    "last_notice_at": iso(at),
                    "resolved_at": None,
                    "resolve_reason": None,
                    "resolved_status": None,
                    "position": pos,
                }
                self.open[event.dedupe_key] = doc
                self._put(doc, batch)
                self._pair(envelope, event.rule_id, event.client_id, batch).update(
                    firings=event.firing, open_key=event.dedupe_key, last_notice_at=iso(at)
                )
            case AlertReminded():
                doc_ = self.open.get(event.dedupe_key)
                if doc_ is not None:
                    doc_.update(
                        reminders=doc_["reminders"] + 1, last_notice_at=iso(at), position=pos
                    )
                    self._put(doc_, batch)
                self._pair(envelope, event.rule_id, event.client_id, batch)["last_notice_at"] = iso(
                    at
                )
            case AlertResolved():
                doc_ = self.open.pop(event.dedupe_key, None)
                if doc_ is not None:
                    doc_.update(
                        state="resolved",
                        resolved_at=iso(at),
                        resolve_reason=event.reason,
                        resolved_status=event.status,
                        position=pos,
                    )
                    self._put(doc_, batch)
                pair = self._pair(envelope, event.rule_id, event.client_id, batch)
                if pair.get("open_key") == event.dedupe_key:
                    pair["open_key"] = None
            case _:
                pass

    def _put(self, doc: Doc, batch: Batch) -> None:
        fired = datetime.fromisoformat(doc["fired_at"]).timestamp()
        batch.put(ALERTS, doc["dedupe_key"], doc, client_id=doc["client_id"], sort=fired)
        batch.changed("alert", doc["dedupe_key"], doc["position"])

    def _pair(self, envelope: Envelope, rule_id: str, client_id: str, batch: Batch) -> Doc:
        """The pair's document, moved to this event's stream version (and written)."""
        key = pair_key(rule_id, client_id)
        pair = self.pairs.setdefault(
            key,
            {
                "rule_id": rule_id,
                "client_id": client_id,
                "version": 0,
                "firings": 0,
                "open_key": None,
                "last_notice_at": None,
            },
        )
        pair["version"] = envelope.recorded.version
        pair["position"] = envelope.position
        batch.put(ALERT_STREAMS, key, pair, client_id=client_id)
        return pair
