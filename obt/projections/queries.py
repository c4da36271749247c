"""Read-side queries: turn read-model documents into the shapes the API and dashboard use."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from obt.domain.liveness import Status
from obt.projections.clients import CLIENTS
from obt.projections.models import MODELS
from obt.projections.timeline import TIMELINE
from obt.projections.uptime import (
    BUCKETS,
    CATEGORY_FIELD,
    INTERVALS,
    OPEN,
    ZERO,
    bucket_start,
    bucket_width,
    seconds_field,
    split,
)
from obt.store.ports import Doc, ReadStore

DAY = timedelta(hours=24)
SUMMARY_FIELDS = (
    "client_id",
    "hostname",
    "status",
    "status_since",
    "last_seen",
    "registered_at",
    "platform",
    "agent_version",
    "labels",
    "ollama",
    "models_count",
    "loaded_count",
    "clock_skew_ms",
    "session_id",
    "position",
)
MAX_BUCKETS = {"hour": 24 * 31, "day": 366 * 2}


class RangeTooLarge(ValueError):
    pass


def uptime_fraction(recent: Iterable[list[Any]], now: datetime) -> float | None:
    """Share of counted time in the last 24 h that was up; unknown time is not counted."""
    window_start = (now - DAY).timestamp()
    end_ts = now.timestamp()
    totals = dict.fromkeys(CATEGORY_FIELD.values(), 0.0)
    for status, start, end in recent:
        field = seconds_field(Status(status))
        if field is None:
            continue
        lo, hi = max(start, window_start), min(end if end is not None else end_ts, end_ts)
        if hi > lo:
            totals[field] += hi - lo
    counted = totals["up_s"] + totals["degraded_s"] + totals["down_s"]
    return round(totals["up_s"] / counted, 6) if counted > 0 else None


def client_summary(doc: Doc, now: datetime) -> Doc:
    out = {k: doc.get(k) for k in SUMMARY_FIELDS}
    out["uptime_24h"] = uptime_fraction(doc.get("recent", []), now)
    return out


def client_detail(doc: Doc, now: datetime) -> Doc:
    out = client_summary(doc, now)
    out["models"] = sorted(doc.get("models", {}).values(), key=lambda m: m["name"])
    out["loaded"] = sorted(doc.get("loaded", {}).values(), key=lambda m: m["name"])
    return out


class ReadModels:
    def __init__(self, store: ReadStore) -> None:
        self._store = store

    @property
    def store(self) -> ReadStore:
        return self._store

    async def clients(self, now: datetime) -> list[Doc]:
        docs = await self._store.find(CLIENTS)
        return sorted(
            (client_summary(d, now) for d in docs),
            key=lambda c: (c.get("hostname") or "", c["client_id"]),
        )

    async def client(self, client_id: str, now: datetime) -> Doc | None:
        doc = await self._store.get(CLIENTS, client_id)
        return client_detail(doc, now) if doc else None

    async def timeline(
        self, client_id: str | None, before: int | None, limit: int
    ) -> tuple[list[Doc], int | None]:
        docs = await self._store.find(
            TIMELINE,
            client_id=client_id,
            sort_lt=float(before) if before is not None else None,
            descending=True,
            limit=limit + 1,
        )
        items = [
            {k: d[k] for k in ("position", "at", "client_id", "type", "summary")} for d in docs
        ]
        more = len(items) > limit
        items = items[:limit]
        return items, (items[-1]["position"] if more and items else None)

    async def models(self) -> list[Doc]:
        docs = await self._store.find(MODELS)
        names = {d["client_id"]: d.get("hostname") for d in await self._store.find(CLIENTS)}
        items = []
        for doc in sorted(docs, key=lambda d: d["name"]):
            hosts = [
                {
                    "client_id": cid,
                    "hostname": names.get(cid) or cid,
                    "digest": h.get("digest"),
                    "size": h.get("size"),
                    "installed": bool(h.get("installed")),
                    "loaded": bool(h.get("loaded")),
                    "size_vram": h.get("size_vram"),
                    "expires_at": h.get("expires_at"),
                }
                for cid, h in sorted(doc["hosts"].items())
            ]
            items.append(
                {
                    "name": doc["name"],
                    "hosts": hosts,
                    "digests": doc.get("digests", []),
                    "drift": bool(doc.get("drift")),
                    "installed_count": sum(1 for h in hosts if h["installed"]),
                    "loaded_count": sum(1 for h in hosts if h["loaded"]),
                }
            )
        return items

    async def uptime(
        self, client_id: str, start: datetime, end: datetime, bucket: str, now: datetime
    ) -> Doc:
        width = bucket_width(bucket)
        first = bucket_start(start, bucket)
        count = int((end - first) / width) + 1
        if count > MAX_BUCKETS[bucket]:
            raise RangeTooLarge(
                f"{count} {bucket} buckets asked for; at most {MAX_BUCKETS[bucket]} at once"
            )
        stored = await self._store.find(
            BUCKETS[bucket],
            client_id=client_id,
            sort_gte=first.timestamp(),
            sort_lt=end.timestamp(),
        )
        by_start = {d["start"]: d for d in stored}
        items: dict[datetime, dict[str, float]] = {}
        cursor = first
        while cursor < end:
            doc = by_start.get(cursor.isoformat())
            items[cursor] = {f: float(doc.get(f, 0.0)) if doc else 0.0 for f in ZERO}
            cursor += width
        open_doc = await self._store.get(OPEN, client_id)
        if open_doc is not None:
            field = seconds_field(Status(open_doc["status"]))
            since = datetime.fromisoformat(open_doc["since"])
            if field is not None and since < min(now, end):
                for b, seconds in split(max(since, first), min(now, end), bucket):
                    if b in items:
                        items[b][field] += seconds
        intervals = await self._intervals(client_id, start, end)
        return {
            "bucket": bucket,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "items": [
                {
                    "start": b.isoformat(),
                    "end": (b + width).isoformat(),
                    **{k: round(v, 3) for k, v in secs.items()},
                }
                for b, secs in items.items()
            ],
            "intervals": intervals,
        }

    async def _intervals(self, client_id: str, start: datetime, end: datetime) -> list[Doc]:
        earlier = await self._store.find(
            INTERVALS, client_id=client_id, sort_lt=start.timestamp(), descending=True, limit=1
        )
        within = await self._store.find(
            INTERVALS, client_id=client_id, sort_gte=start.timestamp(), sort_lt=end.timestamp()
        )
        out = []
        for d in [*earlier, *within]:
            if d["end"] is not None and datetime.fromisoformat(d["end"]) <= start:
                continue
            out.append({"status": d["status"], "start": d["start"], "end": d["end"]})
        return out
