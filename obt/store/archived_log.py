"""The live log and its archive read as one log, merged in position order.

For auditors: `include_archived=true` on /events and /events/export, state-as-of inside the
compacted range, `obt archive restore`. Reads only; segments are decoded on demand and the
last few kept decoded, since pages usually walk one segment after another.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from obt.store.archive import Archive, ManifestEntry, read_events, uncompress
from obt.store.codec import to_datetime, to_timestamp
from obt.store.ports import AppendResult, EventLog, NewEvent, RecordedEvent

_DECODED_SEGMENTS = 4


class ArchivedLog:
    """An EventLog view of `live` with the events `archive` holds put back in their places."""

    def __init__(self, live: EventLog, archive: Archive) -> None:
        self.backend = live.backend
        self._live = live
        self._archive = archive
        self._decoded: OrderedDict[str, list[RecordedEvent]] = OrderedDict()

    async def _segments(self, after: int, until: int | None) -> list[ManifestEntry]:
        return [
            e
            for e in await self._archive.entries()
            if e.last_position > after and (until is None or e.first_position <= until)
        ]

    async def _events_of(self, entry: ManifestEntry) -> list[RecordedEvent]:
        cached = self._decoded.get(entry.segment_id)
        if cached is not None:
            self._decoded.move_to_end(entry.segment_id)
            return cached
        body = await self._archive.body(entry.segment_id)
        events = await asyncio.to_thread(_decode, body)
        self._decoded[entry.segment_id] = events
        while len(self._decoded) > _DECODED_SEGMENTS:
            self._decoded.popitem(last=False)
        return events

    async def read_all(
        self,
        *,
        after: int = 0,
        limit: int = 1000,
        types: Collection[str] | None = None,
        stream: str | None = None,
        until: int | None = None,
        recorded_from: datetime | None = None,
        recorded_to: datetime | None = None,
        descending: bool = False,
    ) -> list[RecordedEvent]:
        live = await self._live.read_all(
            after=after,
            limit=limit,
            types=types,
            stream=stream,
            until=until,
            recorded_from=recorded_from,
            recorded_to=recorded_to,
            descending=descending,
        )
        wanted = None if types is None else set(types)
        low = None if recorded_from is None else to_timestamp(recorded_from)
        high = None if recorded_to is None else to_timestamp(recorded_to)
        archived: list[RecordedEvent] = []
        segments = await self._segments(after, until)
        for entry in reversed(segments) if descending else segments:
            if len(archived) >= limit:
                break
            events = await self._events_of(entry)
            for event in reversed(events) if descending else events:
                if event.position <= after or (until is not None and event.position > until):
                    continue
                if wanted is not None and event.type not in wanted:
                    continue
                if stream is not None and event.stream != stream:
                    continue
                at = event.recorded_at.timestamp()
                if (low is not None and at < low) or (high is not None and at >= high):
                    continue
                archived.append(event)
                if len(archived) >= limit:
                    break
        return _merge(live, archived, limit, descending=descending)

    async def read_stream(
        self, stream: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        live = await self._live.read_stream(stream, after_version=after_version, limit=limit)
        archived = [
            event
            for entry in await self._segments(0, None)
            for event in await self._events_of(entry)
            if event.stream == stream and event.version > after_version
        ]
        merged = sorted([*live, *archived], key=lambda e: e.version)
        return merged if limit is None else merged[: max(limit, 0)]

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        recorded_at: datetime,
    ) -> AppendResult:
        """Appends go to the live log: the archive only ever holds what compaction moved."""
        return await self._live.append(
            stream, events, expected_version=expected_version, recorded_at=recorded_at
        )

    async def head(self) -> int:
        return await self._live.head()

    async def stream_version(self, stream: str) -> int:
        return await self._live.stream_version(stream)  # a stream's last event is never moved

    async def position_at(self, when: datetime) -> int:
        live = await self._live.position_at(when)
        moment = to_timestamp(when)
        best = live
        for entry in await self._archive.entries():
            if (
                entry.last_position <= best
                or to_datetime(entry.first_recorded_at).timestamp() > moment
            ):
                continue
            for event in await self._events_of(entry):
                if event.recorded_at.timestamp() <= moment and event.position > best:
                    best = event.position
        return best

    async def wait_for_append(self, after: int, timeout: float) -> int:  # noqa: ASYNC109
        return await self._live.wait_for_append(after, timeout)


def _decode(body: bytes) -> list[RecordedEvent]:
    return [
        RecordedEvent(
            position=line["position"],
            id=line["id"],
            stream=line["stream"],
            version=line["version"],
            type=line["type"],
            schema_version=line["schema_version"],
            data=line["data"],
            metadata=line["metadata"],
            recorded_at=to_datetime(line["recorded_at"]),
        )
        for line in read_events(uncompress(body))
    ]


def _merge(
    live: Iterable[RecordedEvent],
    archived: Iterable[RecordedEvent],
    limit: int,
    *,
    descending: bool,
) -> list[RecordedEvent]:
    if descending:
        merged = heapq.merge(live, archived, key=lambda e: -e.position)
    else:
        merged = heapq.merge(live, archived, key=lambda e: e.position)
    out: list[RecordedEvent] = []
    for event in merged:
        if len(out) >= max(limit, 0):
            break
        out.append(event)
    return out


def with_archive(log: EventLog) -> EventLog:
    """`log` with its store's archive merged in, when its store keeps one."""
    archive = getattr(log, "archive", None)
    return ArchivedLog(log, archive()) if callable(archive) else log
