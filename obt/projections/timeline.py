"""The `timeline` read model: a human-readable entry per notable event, per client and fleet."""

from __future__ import annotations

from typing import ClassVar

from obt.domain.events import ClientEvent, HeartbeatReceived
from obt.projections.base import HEARTBEAT, Batch, Envelope, Projector, iso
from obt.projections.summaries import summarize
from obt.store.ports import ReadStore

TIMELINE = "timeline"


def timeline_key(position: int) -> str:
    return f"{position:020d}"


class TimelineProjector(Projector):
    name: ClassVar[str] = "timeline"
    collections: ClassVar[tuple[str, ...]] = (TIMELINE,)

    async def load(self, store: ReadStore) -> None:
        return None  # append-only: nothing to keep in memory

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT:
            return  # heartbeats change nothing here (and need no decoding)
        event = envelope.event
        if isinstance(event, HeartbeatReceived):
            return  # every heartbeat is in the log; the timeline tells only what changed
        summary = summarize(event)
        if summary is None:
            return
        cid = event.client_id if isinstance(event, ClientEvent) else None
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
