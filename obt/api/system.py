"""Health, server info, live updates (Server-Sent Events) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from obt import __version__
from obt.api.deps import MetricsDep, OBTDep
from obt.api.errors import ApiError
from obt.bootstrap import OBT
from obt.compaction import measured_sizes
from obt.errors import StoreError
from obt.live import LiveMessage
from obt.live_changes import InvalidWatch, Watch

router = APIRouter(tags=["system"])
root_router = APIRouter(tags=["system"])

PING_S = 15
HEALTH_STORE_TIMEOUT_S = 2.0


async def health_report(obt: OBT) -> tuple[int, dict[str, Any]]:
    monitor = obt.store_monitor
    store: dict[str, Any] = {
        "backend": obt.store.backend,
        "reachable": False,
        "down_since": monitor.down_since,
        "outages": monitor.outages,
    }
    try:
        # A store known to be down is not asked again (that could take its whole timeout).
        monitor.refuse_writes_while_down()
        async with asyncio.timeout(HEALTH_STORE_TIMEOUT_S):
            store["latency_ms"] = round(await obt.store.ping(), 3)
            head = await obt.store.head()
        store.update(reachable=True, head=head, error=None)
        describe = getattr(obt.store, "describe", None)
        if describe is not None:
            store["details"] = describe()
    except (StoreError, TimeoutError) as exc:
        error = str(exc) or f"no answer within {HEALTH_STORE_TIMEOUT_S} s"
        store.update(latency_ms=None, head=None, error=error)
        head = None
    projections = [
        {
            "name": name,
            "position": position,
            "lag": (head - position) if head is not None else None,
            "error": obt.runner.errors.get(name),
        }
        for name, position in obt.runner.positions.items()
    ]
    grace_until = None
    if obt.lifecycle.started_at is not None:
        grace_until = obt.lifecycle.started_at + timedelta(seconds=obt.settings.heartbeat_timeout_s)
    scheduler = {**obt.scheduler.describe(), "grace_until": grace_until}
    if not store["reachable"]:
        overall = "down"
    elif any(p["error"] for p in projections) or not obt.scheduler.running:
        overall = "degraded"
    else:
        overall = "ok"
    body = {
        "status": overall,
        "version": __version__,
        "server_time": obt.clock.now(),
        "store": store,
        "projections": projections,
        "scheduler": scheduler,
        "jobs": obt.jobs.describe(),  # alert evaluation, notification delivery, compaction
        "live_subscribers": obt.live.subscriber_count,
    }
    return (503 if overall == "down" else 200), body


@router.get("/health", summary="Store reachability, projection lag, scheduler state")
async def health(obt: OBTDep) -> JSONResponse:
    code, body = await health_report(obt)
    headers = {"Retry-After": "5"} if code == 503 else None
    return JSONResponse(orjson.loads(orjson.dumps(body)), status_code=code, headers=headers)


@router.get("/info", summary="What the dashboard needs to tell a new user how to connect")
async def info(obt: OBTDep) -> dict[str, Any]:
    settings = obt.settings
    token_hint = (
        "set by the OBT_ENROLLMENT_TOKEN environment variable of the server"
        if settings.enrollment_token
        else f"in the file {settings.enrollment_token_path.resolve()} on the server"
    )
    return {
        "version": __version__,
        "server_time": obt.clock.now(),
        "heartbeat_interval_s": settings.heartbeat_interval_s,
        "timeout_s": settings.heartbeat_timeout_s,
        "store": obt.store.backend,
        "enrollment_token_hint": token_hint,
        "agent_command": (
            "OBT_SERVER_URL=http://<this-server>:"
            f"{settings.port} OBT_ENROLLMENT_TOKEN=<token> obt-agent"
        ),
    }


@router.get(
    "/live",
    summary="Server-Sent Events of read-model changes (client, model, timeline, counts)",
    response_class=EventSourceResponse,
)
async def live(
    request: Request,
    obt: OBTDep,
    last_event_id: Annotated[str | None, Header()] = None,
    resume_from: Annotated[
        str | None,
        Query(
            alias="last_event_id",
            description="Resume after this id (for clients that cannot set Last-Event-ID); "
            "the header wins when both are sent",
        ),
    ] = None,
    watch: Annotated[
        list[str] | None,
        Query(
            description="What to be sent (repeat or comma-separate): clients, client:<id>, "
            "timeline, timeline:<id>, models, counts. None: every client, model and "
            "timeline change, no counts",
        ),
    ] = None,
) -> EventSourceResponse:
    try:
        watching = Watch.parse(watch or [])
    except InvalidWatch as exc:
        raise ApiError(422, "invalid_watch", str(exc)) from None
    sub, first = obt.live.subscribe(_resume_point(last_event_id or resume_from), watching)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield ServerSentEvent(comment="connected").encode()
            if first:
                yield _encode(first)
            while not await request.is_disconnected():
                try:
                    messages = await asyncio.wait_for(sub.queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                yield _encode(messages)  # one write per flush
        finally:
            obt.live.unsubscribe(sub)

    return EventSourceResponse(stream(), ping=PING_S, headers={"Cache-Control": "no-store"})


def _resume_point(text: str | None) -> int | None:
    """An id this server gave out, or -1 for one it cannot have (the subscriber reloads)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 19 else -1


def _encode(messages: list[LiveMessage]) -> bytes:
    return b"".join(
        ServerSentEvent(id=str(m.id), event=m.event, data=orjson.dumps(m.data).decode()).encode()
        for m in messages
    )


@root_router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(obt: OBTDep, m: MetricsDep) -> Response:
    head = None
    try:
        head = await obt.store.head()
        clients = await obt.read_models.clients(obt.clock.now())
    except StoreError:
        clients = []
    lags = {
        name: (head - pos if head is not None else 0) for name, pos in obt.runner.positions.items()
    }
    m.set_snapshot(lags, (c["status"] for c in clients))
    await measured_sizes(obt.store, m, time.monotonic())
    return Response(m.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
