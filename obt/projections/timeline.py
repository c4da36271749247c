"""The `timeline` read model: a human-readable entry per notable event, per client and fleet.

Fleet operations show in each host's timeline: the start and the end of its part (the request
and the operation's end are fleet entries). Their target events name only the operation, so the
projector keeps each operation's action and model in `timeline_operations`, written in the same
batch as the entries, so it is as far along as the timeline after a restart."""

from __future__ import annotations

from typing import ClassVar

from obt.domain.events import (
    ClientEvent,
    Event,
    HeartbeatReceived,
    OperationFinished,
    OperationRequested,
    OperationTargetCancelled,
    OperationTargetExpired,
    OperationTargetFailed,
    OperationTargetStarted,
    OperationTargetSucceeded,
)
from obt.projections.base import HEARTBEAT, Batch, Envelope, Projector, iso
from obt.projections.summaries import summarize
from obt.store.ports import ReadStore

TIMELINE = "timeline"
TIMELINE_OPERATIONS = "timeline_operations"  # operation id -> action and model


def timeline_key(position: int) -> str:
    return f"{position:020d}"


class TimelineProjector(Projector):
    name: ClassVar[str] = "timeline"
    collections: ClassVar[tuple[str, ...]] = (TIMELINE, TIMELINE_OPERATIONS)

    def __init__(self) -> None:
        self._operations: dict[str, tuple[str, str]] = {}

    async def load(self, store: ReadStore) -> None:
        # The entries are append-only; only the operations' names are kept in memory.
        docs = await store.find(TIMELINE_OPERATIONS)
        self._operations = {d["id"]: (d["action"], d["model"]) for d in docs}

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT:
            return  # heartbeats change nothing here (and need no decoding)
        event = envelope.event
        if isinstance(event, HeartbeatReceived):
            return  # every heartbeat is in the log; the timeline tells only what changed
        if envelope.type.startswith("Operation"):
            found = self._operation_entry(event, batch)
            if found is None:
                return
            cid, summary = found
        else:
            text = summarize(event)
            if text is None:
                return
            cid, summary = (event.client_id if isinstance(event, ClientEvent) else None), text
        pos = envelope.position
        doc = {
            "position": pos,
            "at": iso(envelope.at),
            "client_id": cid,
            "type": envelope.recorded.type,
            "summary": summary,
        }
        batch.put(TIMELINE, timeline_key(pos), doc, client_id=cid, sort=float(pos))
        batch.changed("timeline", timeline_key(pos), pos)

    def _operation_entry(self, event: Event, batch: Batch) -> tuple[str | None, str] | None:
        """(client id or None for the fleet, summary) of an operation event worth an entry."""
        if isinstance(event, OperationRequested):
            self._operations[event.operation_id] = (event.action, event.model)
            batch.put(
                TIMELINE_OPERATIONS,
                event.operation_id,
                {"id": event.operation_id, "action": event.action, "model": event.model},
            )
            hosts = len(event.targets)
            what = _what(event.operation_id, event.action, event.model)
            return None, f"{what} requested on {hosts} host{'s' if hosts != 1 else ''}"
        operation_id = getattr(event, "operation_id", None)
        if operation_id is None:
            return None
        action, model = self._operations.get(operation_id, ("operation", "?"))
        what = _what(operation_id, action, model)
        match event:
            case OperationTargetStarted():
                return event.client_id, f"{what} started"
            case OperationTargetSucceeded():
                return event.client_id, f"{what} succeeded"
            case OperationTargetFailed():
                return event.client_id, f"{what} failed: {event.reason}"
            case OperationTargetCancelled():
                return event.client_id, f"{what} cancelled"
            case OperationTargetExpired():
                return event.client_id, f"{what} expired before this host finished"
            case OperationFinished():
                counts = {
                    "succeeded": event.succeeded,
                    "failed": event.failed,
                    "cancelled": event.cancelled,
                    "expired": event.expired,
                }
                parts = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
                return None, f"{what} finished: {parts or 'no host'}"
            case _:
                return None  # progress: the operation's page shows it, the timeline does not


def _what(operation_id: str, action: str, model: str) -> str:
    verb = {"pull": "Pull", "delete": "Removal"}.get(action, "Operation")
    return f"{verb} of {model} (operation {operation_id[:8]})"
