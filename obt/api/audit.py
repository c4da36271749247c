"""Audit endpoints: the event log paged by position, NDJSON export, state as of a moment."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from obt.api.deps import ClientIdPath, MetricsDep, OBTDep
from obt.api.errors import ApiError, json_response
from obt.api.schemas import AwareDatetime, ClientStateAt, ErrorResponse, EventPage, FleetStateAt
from obt.compaction import measured_sizes
from obt.projections.replay import client_state, fleet_state
from obt.store.archive_verify import compactions as compactions_since
from obt.store.archived_log import with_archive
from obt.store.event_pages import EventFilter, page_after, page_before
from obt.store.ports import EventLog, RecordedEvent

router = APIRouter(tags=["audit"])

REDACTED = frozenset({"secret_sha256"})  # credentials never leave the server, even hashed
EXPORT_CHUNK = 2000


def masked_notify(notify: Any) -> Any:
    """An alert rule's targets without their credentials: Apprise URLs carry tokens in them,
    webhooks a signing secret (and often a token in the path). What kind of target it was
    stays: the Apprise scheme, the webhook's host."""
    if not isinstance(notify, dict):
        return notify
    return {
        "urls": [str(u).split("://", 1)[0] + "://(redacted)" for u in notify.get("urls", [])],
        "webhooks": [
            {"url": _host_only(str(w.get("url", ""))), "secret": "(redacted)"}
            for w in notify.get("webhooks", [])
            if isinstance(w, dict)
        ],
    }


def _host_only(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}/(redacted)"
    except ValueError:  # not a URL after all (rules are checked, older data may not be)
        return "(redacted)"


def event_out(e: RecordedEvent) -> dict[str, Any]:
    return {
        "position": e.position,
        "id": e.id,
        "stream": e.stream,
        "version": e.version,
        "type": e.type,
        "schema_version": e.schema_version,
        "data": {
            k: masked_notify(v) if k == "notify" else v
            for k, v in e.data.items()
            if k not in REDACTED
        },
        "metadata": e.metadata,
        "recorded_at": e.recorded_at.isoformat(),
    }


def _types(type_: list[str] | None) -> list[str] | None:
    if not type_:
        return None
    names = [t.strip() for value in type_ for t in value.split(",") if t.strip()]
    return names or None


Stream = Annotated[str | None, Query(max_length=200, description="e.g. client-<id> or system")]
Types = Annotated[
    list[str] | None, Query(alias="type", description="event type(s); repeat or comma-separate")
]
After = Annotated[int, Query(ge=0, le=2**62, description="exclusive position to start after")]
IncludeArchived = Annotated[
    bool,
    Query(description="merge in the events compaction moved to the archive, in position order"),
]


@router.get(
    "/events",
    response_model=None,
    responses={200: {"model": EventPage}, 422: {"model": ErrorResponse}},
    summary="The event log, paged by position, forward (after) or backward (before)",
)
async def list_events(
    obt: OBTDep,
    stream: Stream = None,
    type_: Types = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**62,
            description="exclusive position to start after (0 when neither cursor is given)",
        ),
    ] = None,
    before: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**62,
            description=(
                "exclusive position to end before: the newest `limit` events below it, "
                "still in ascending order; a very large value reads the newest page"
            ),
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: AwareDatetime | None = None,
    include_archived: IncludeArchived = False,
) -> Response:
    if after is not None and before is not None:
        raise ApiError(
            422,
            "validation_error",
            "give either `after` or `before`, not both: a page has one cursor",
        )
    where = EventFilter(types=_types(type_), stream=stream, recorded_from=from_, recorded_to=to)
    log = with_archive(obt.store) if include_archived else obt.store
    if before is not None:
        page = await page_before(log, before, limit, where)
    else:
        page = await page_after(log, after or 0, limit, where)
    return json_response(
        {
            "items": [event_out(e) for e in page.items],
            "next_after": page.next_after,
            "next_before": page.next_before,
        }
    )


@router.get(
    "/events/export",
    summary="The event log as NDJSON, one event a line",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export_events(
    obt: OBTDep,
    stream: Stream = None,
    type_: Types = None,
    after: After = 0,
    include_archived: IncludeArchived = False,
) -> StreamingResponse:
    head = await obt.store.head()
    log = with_archive(obt.store) if include_archived else obt.store
    return StreamingResponse(
        ndjson(log, after=after, until=head, types=_types(type_), stream=stream),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="obt-events.ndjson"'},
    )


async def ndjson(
    log: EventLog,
    *,
    after: int = 0,
    until: int | None = None,
    types: list[str] | None = None,
    stream: str | None = None,
) -> AsyncIterator[bytes]:
    while True:
        events = await log.read_all(
            after=after, limit=EXPORT_CHUNK, until=until, types=types, stream=stream
        )
        if not events:
            return
        yield b"".join(orjson.dumps(event_out(e)) + b"\n" for e in events)
        after = events[-1].position


@router.get(
    "/clients/{client_id}/state",
    response_model=None,
    responses={200: {"model": ClientStateAt}, 422: {"model": ErrorResponse}},
    summary="A client's state as of a moment, replayed from the log",
)
async def client_state_at(client_id: ClientIdPath, at: AwareDatetime, obt: OBTDep) -> Response:
    # Moments inside the compacted range need the archived heartbeats to be exact.
    position, client = await client_state(with_archive(obt.store), client_id, at)
    return json_response({"at": at, "position": position, "client": client})


@router.get(
    "/fleet/state",
    response_model=None,
    responses={200: {"model": FleetStateAt}},
    summary="Every client's state as of a moment, replayed from the log",
)
async def fleet_state_at(at: AwareDatetime, obt: OBTDep) -> Response:
    position, clients = await fleet_state(with_archive(obt.store), at)
    return json_response({"at": at, "position": position, "clients": clients})


@router.get(
    "/storage",
    response_model=None,
    summary="What the live log and the archive hold, and the last compaction",
)
async def storage(obt: OBTDep, m: MetricsDep) -> Response:
    sizes = await measured_sizes(obt.store, m, time.monotonic())
    archive = getattr(obt.store, "archive", None)
    entries = await archive().entries() if callable(archive) else []
    last = (await compactions_since(obt.store))[-1:]
    return json_response(
        {
            "log": {"bytes": sizes.get("obt_log_bytes"), "head": await obt.store.head()},
            "archive": {
                "bytes": sizes.get("obt_archive_bytes"),
                "segments": len(entries),
                "events": sum(e.count for e in entries),
                "first_position": entries[0].first_position if entries else None,
                "last_position": entries[-1].last_position if entries else None,
                "last_recorded_at": entries[-1].last_recorded_at if entries else None,
            },
            "retention_s": obt.settings.heartbeat_retention.total_seconds(),
            "last_compaction": {
                "at": last[0].recorded_at,
                "segment_id": last[0].data["segment_id"],
                "removed": last[0].data["removed"],
            }
            if last
            else None,
        }
    )
