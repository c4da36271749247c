"""Audit replay: the state of one client or the whole fleet as it was at a given moment.

Replays fold the log afresh through the same projector the live read model uses, so "as of
now" and the live view cannot disagree.
"""

from __future__ import annotations

from datetime import datetime

from obt.domain.events import SYSTEM_STREAM, client_stream
from obt.projections.base import Batch
from obt.projections.clients import ClientsProjector
from obt.projections.queries import client_detail
from obt.projections.runner import decode
from obt.store.ports import Doc, EventLog, RecordedEvent

CHUNK = 5000


async def fleet_state(log: EventLog, at: datetime) -> tuple[int, list[Doc]]:
    """(position used, every client's detail) as of `at`."""
    position = await log.position_at(at)
    projector = ClientsProjector()
    after = 0
    while after < position:
        records = await log.read_all(after=after, until=position, limit=CHUNK)
        if not records:
            break
        batch = Batch()
        projector.apply_all(decode(records), batch)
        projector.flush(batch)
        after = records[-1].position
    clients = [client_detail(doc, at) for doc in projector.docs.values()]
    clients.sort(key=lambda c: (c.get("hostname") or "", c["client_id"]))
    return position, clients


async def client_state(log: EventLog, client_id: str, at: datetime) -> tuple[int, Doc | None]:
    """(position used, the client's detail or None if not yet registered) as of `at`."""
    position = await log.position_at(at)
    records: list[RecordedEvent] = []
    for stream in (client_stream(client_id), SYSTEM_STREAM):
        records.extend(await _stream_until(log, stream, position))
    records.sort(key=lambda r: r.position)
    projector = ClientsProjector()
    batch = Batch()
    projector.apply_all(decode(records), batch)
    projector.flush(batch)
    doc = projector.docs.get(client_id)
    return position, client_detail(doc, at) if doc else None


async def _stream_until(log: EventLog, stream: str, position: int) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    after_version = 0
    while True:
        batch = await log.read_stream(stream, after_version=after_version, limit=CHUNK)
        for r in batch:
            if r.position > position:
                return out
            out.append(r)
        if len(batch) < CHUNK:
            return out
        after_version = batch[-1].version
