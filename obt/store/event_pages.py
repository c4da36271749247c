"""Pages of the event log for the audit API: forward after a position or backward before one,
with honest cursors both ways."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from obt.store.ports import EventLog, RecordedEvent


@dataclass(frozen=True, slots=True)
class EventFilter:
    types: Collection[str] | None = None
    stream: str | None = None
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventPage:
    items: list[RecordedEvent]  # ascending position, whichever way the page was read
    next_after: int | None  # a cursor for newer matching events; None when there are none
    next_before: int | None  # a cursor for older matching events; None when there are none


async def page_after(log: EventLog, after: int, limit: int, where: EventFilter) -> EventPage:
    """The first `limit` matching events after `after`."""
    events = await _read(log, where, after=after, limit=limit + 1)
    newer = len(events) > limit
    items = events[:limit]
    # Nothing matches between `after` and the first item, so older events are at or before
    # `after`: none when it is 0, else one read of the nearest.
    older = after > 0 and bool(await _read(log, where, until=after, limit=1, descending=True))
    return EventPage(
        items=items,
        next_after=items[-1].position if newer and items else None,
        next_before=(items[0].position if items else after + 1) if older else None,
    )


async def page_before(log: EventLog, before: int, limit: int, where: EventFilter) -> EventPage:
    """The last `limit` matching events before `before`, still in ascending order."""
    until = before - 1
    if where.recorded_to is not None:
        # recorded_at never decreases along positions: nothing at or after `to` can match, so a
        # bound on positions spares a backwards walk over the newer part of the log.
        until = min(until, await log.position_at(where.recorded_to))
    events = await _read(log, where, until=until, limit=limit + 1, descending=True)
    older = len(events) > limit
    items = events[:limit][::-1]
    # Nothing matches between the last item and `before`, so newer events are at or after
    # `before`: one read of the nearest tells.
    newer = bool(await _read(log, where, after=before - 1, limit=1))
    return EventPage(
        items=items,
        next_after=(items[-1].position if items else before - 1) if newer else None,
        next_before=items[0].position if older and items else None,
    )


async def _read(
    log: EventLog,
    where: EventFilter,
    *,
    limit: int,
    after: int = 0,
    until: int | None = None,
    descending: bool = False,
) -> list[RecordedEvent]:
    return await log.read_all(
        after=after,
        until=until,
        limit=limit,
        types=where.types,
        stream=where.stream,
        recorded_from=where.recorded_from,
        recorded_to=where.recorded_to,
        descending=descending,
    )
