"""The `uptime` read model: status intervals plus hourly and daily seconds per category.

Closed intervals are added to their buckets; the open interval is added by the query at read
time, so the stored buckets never need correcting.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from obt.domain.events import (
    ClientEvent,
    ClientRegistered,
    ServerStarted,
    ServerStopped,
)
from obt.domain.liveness import UPTIME_CATEGORY, Status
from obt.projections.base import HEARTBEAT, Batch, Envelope, Projector, iso, ts
from obt.projections.status import Liveness, client_transition, server_transitions
from obt.store.ports import Doc, ReadStore

ONLINE, DEGRADED = Status.ONLINE, Status.DEGRADED

INTERVALS = "uptime_intervals"
HOURS = "uptime_hour"
DAYS = "uptime_day"
OPEN = "uptime_open"
META = "uptime_meta"
BUCKETS = {"hour": HOURS, "day": DAYS}
CATEGORY_FIELD = {"up": "up_s", "degraded": "degraded_s", "down": "down_s", "unknown": "unknown_s"}
ZERO = {"up_s": 0.0, "degraded_s": 0.0, "down_s": 0.0, "unknown_s": 0.0}


def bucket_start(at: datetime, bucket: str) -> datetime:
    at = at.astimezone(UTC)
    if bucket == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_width(bucket: str) -> timedelta:
    return timedelta(hours=1) if bucket == "hour" else timedelta(days=1)


def split(start: datetime, end: datetime, bucket: str) -> Iterator[tuple[datetime, float]]:
    """(bucket start, seconds) for each bucket that [start, end) overlaps."""
    cursor = start
    width = bucket_width(bucket)
    while cursor < end:
        b = bucket_start(cursor, bucket)
        stop = min(end, b + width)
        yield b, (stop - cursor).total_seconds()
        cursor = stop


def seconds_field(status: Status) -> str | None:
    category = UPTIME_CATEGORY[status]
    return CATEGORY_FIELD[category.value] if category else None


class UptimeProjector(Projector):
    name: ClassVar[str] = "uptime"
    collections: ClassVar[tuple[str, ...]] = (INTERVALS, HOURS, DAYS, OPEN, META)

    def __init__(self) -> None:
        self.open: dict[str, Liveness] = {}
        self.observed_since: datetime | None = None

    async def load(self, store: ReadStore) -> None:
        self.open = {
            d["client_id"]: Liveness(
                Status(d["status"]), datetime.fromisoformat(d["since"]), Status(d["underlying"])
            )
            for d in await store.find(OPEN)
        }
        meta = await store.get(META, "server")
        since = meta.get("observed_since") if meta else None
        self.observed_since = datetime.fromisoformat(since) if since else None

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT:
            # The common case first, from the raw data: one more heartbeat in the same
            # status changes nothing.
            data = envelope.data
            current = self.open.get(data["client_id"])
            if current is not None:
                status = ONLINE if data["ollama"].get("reachable") else DEGRADED
                if current.status is status and current.underlying is status:
                    return
        event, at, pos = envelope.event, envelope.at, envelope.position
        if isinstance(event, ServerStarted | ServerStopped):
            if isinstance(event, ServerStarted):
                self.observed_since = event.started_at
                batch.put(
                    META, "server", {"observed_since": iso(event.started_at), "position": pos}
                )
            for cid, live in list(self.open.items()):
                for step in server_transitions(live, event):
                    self._move(cid, step, pos, batch)
            return
        if not isinstance(event, ClientEvent):
            return
        cid = event.client_id
        current = self.open.get(cid)
        if current is None and not isinstance(event, ClientRegistered):
            return
        moved = client_transition(current, event, at, self.observed_since)
        if moved is None:
            return
        if current is not None and moved.status is current.status:
            if moved.underlying is not current.underlying:
                self.open[cid] = moved
                self._put_open(cid, moved, pos, batch)
            return
        self._move(cid, moved, pos, batch)

    def _move(self, cid: str, new: Liveness, pos: int, batch: Batch) -> None:
        old = self.open.get(cid)
        if old is not None:
            end = max(new.since, old.since)
            key = f"{cid}:{ts(old.since)}"
            if end <= old.since:
                batch.delete(INTERVALS, key)  # a zero-length interval is no history
            else:
                doc = _interval(cid, old, end, pos)
                batch.put(INTERVALS, key, doc, client_id=cid, sort=ts(old.since))
                self._count(cid, old.status, old.since, end, batch)
        self.open[cid] = new
        key = f"{cid}:{ts(new.since)}"
        batch.put(INTERVALS, key, _interval(cid, new, None, pos), client_id=cid, sort=ts(new.since))
        self._put_open(cid, new, pos, batch)

    def _put_open(self, cid: str, live: Liveness, pos: int, batch: Batch) -> None:
        doc = {
            "client_id": cid,
            "status": live.status.value,
            "since": iso(live.since),
            "underlying": live.underlying.value,
            "position": pos,
        }
        batch.put(OPEN, cid, doc, client_id=cid)

    @staticmethod
    def _count(cid: str, status: Status, start: datetime, end: datetime, batch: Batch) -> None:
        field = seconds_field(status)
        if field is None:
            return
        for bucket, collection in BUCKETS.items():
            for b, seconds in split(start, end, bucket):
                base = {"client_id": cid, "start": iso(b), **ZERO}
                batch.increment(
                    collection, f"{cid}:{ts(b)}", {field: seconds}, base, client_id=cid, sort=ts(b)
                )


def _interval(cid: str, live: Liveness, end: datetime | None, pos: int) -> Doc:
    return {
        "client_id": cid,
        "status": live.status.value,
        "start": iso(live.since),
        "end": iso(end),
        "position": pos,
    }
