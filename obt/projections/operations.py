"""The `operations` read model: each fleet operation with its per-host states and counts."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from obt.domain.events import (
    OperationFinished,
    OperationRequested,
    OperationTargetCancelled,
    OperationTargetExpired,
    OperationTargetFailed,
    OperationTargetProgressed,
    OperationTargetStarted,
    OperationTargetSucceeded,
)
from obt.projections.base import HEARTBEAT, Batch, Envelope, Projector, iso
from obt.store.ports import Doc, ReadStore

OPERATIONS = "operations"
TARGET_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "expired")
_ENDS = {
    OperationTargetSucceeded: "succeeded",
    OperationTargetFailed: "failed",
    OperationTargetCancelled: "cancelled",
    OperationTargetExpired: "expired",
}


class OperationsProjector(Projector):
    name: ClassVar[str] = "operations"
    collections: ClassVar[tuple[str, ...]] = (OPERATIONS,)

    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}

    async def load(self, store: ReadStore) -> None:
        self.docs = {d["id"]: d for d in await store.find(OPERATIONS)}

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT or not envelope.type.startswith("Operation"):
            return
        event, at, pos = envelope.event, iso(envelope.at), envelope.position
        if isinstance(event, OperationRequested):
            doc: Doc = {
                "id": event.operation_id,
                "action": event.action,
                "model": event.model,
                "selector": event.selector,
                "max_parallel": event.max_parallel,
                "expires_at": iso(event.expires_at),
                "requested_at": at,
                "finished_at": None,
                "targets": {
                    cid: {
                        "state": "queued",
                        "status": None,
                        "completed": None,
                        "total": None,
                        "reason": None,
                        "updated_at": at,
                    }
                    for cid in event.targets
                },
            }
            self.docs[event.operation_id] = doc
        else:
            found = self.docs.get(getattr(event, "operation_id", ""))
            if found is None:
                return  # an operation requested before this history began
            doc = found
            match event:
                case OperationTargetStarted():
                    _target(doc, event.client_id, at)["state"] = "running"
                case OperationTargetProgressed():
                    _target(doc, event.client_id, at).update(
                        status=event.status, completed=event.completed, total=event.total
                    )
                case OperationTargetFailed():
                    _target(doc, event.client_id, at).update(state="failed", reason=event.reason)
                case (
                    OperationTargetSucceeded()
                    | OperationTargetCancelled()
                    | OperationTargetExpired()
                ):
                    _target(doc, event.client_id, at)["state"] = _ENDS[type(event)]
                case OperationFinished():
                    doc["finished_at"] = at
                case _:
                    return
        doc["counts"] = dict.fromkeys(TARGET_STATES, 0)
        for target in doc["targets"].values():
            doc["counts"][target["state"]] += 1
        doc["position"] = pos
        batch.put(OPERATIONS, doc["id"], doc, sort=_requested(doc))
        batch.changed("operation", doc["id"], pos)


def _target(doc: Doc, client_id: str, at: str | None) -> Doc:
    target: Doc = doc["targets"].setdefault(
        client_id,
        {"state": "queued", "status": None, "completed": None, "total": None, "reason": None},
    )
    target["updated_at"] = at
    return target


def _requested(doc: Doc) -> float:
    return datetime.fromisoformat(doc["requested_at"]).timestamp()
