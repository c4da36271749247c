"""Read endpoints for the dashboard: clients, uptime, timelines, fleet models; admin removal."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status

from obt.api.deps import AdminDep, ClientIdPath, OBTDep
from obt.api.errors import ApiError, json_response
from obt.api.schemas import (
    AwareDatetime,
    ClientDetail,
    ClientList,
    ClientPage,
    ErrorResponse,
    FleetSummary,
    ItemsResponse,
    TimelinePage,
)
from obt.commands.messages import DecommissionClient, RevokeClientSecret
from obt.projections.client_index import STATUSES, ClientQuery, InvalidCursor, Order, SortField
from obt.projections.queries import RangeTooLarge

router = APIRouter(tags=["fleet"])

Limit = Annotated[int, Query(ge=1, le=1000, description="page size (default 100)")]
Before = Annotated[
    int | None, Query(ge=1, le=2**62, description="exclusive position to page back from")
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}


@router.get(
    "/clients",
    response_model=None,
    responses={200: {"model": ClientPage | ClientList}, 422: {"model": ErrorResponse}},
    summary="The fleet's clients: every one, or a page sorted and filtered on the server",
    description=(
        "Without any of the parameters below, every client as `{items}` (sorted by hostname), "
        "as before paging existed. With any of them, `{items, next_cursor, matched, total, "
        "counts}`: at most `limit` clients (every match when `limit` is not given); pass "
        "`next_cursor` back as `cursor`, with the same sort, order and filters, for the next "
        "page."
    ),
)
async def list_clients(
    obt: OBTDep,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="page size")] = None,
    cursor: Annotated[
        str | None, Query(max_length=2000, description="`next_cursor` of the previous page")
    ] = None,
    sort: Annotated[SortField | None, Query(description="field to sort by (hostname)")] = None,
    order: Annotated[Order | None, Query(description="asc (default) or desc")] = None,
    status_: Annotated[
        list[str] | None,
        Query(alias="status", description="statuses to show; repeated or comma-separated"),
    ] = None,
    label: Annotated[
        list[str] | None, Query(description="`key=value`; repeated: every one must match")
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="text in hostname, client id or agent version"),
    ] = None,
) -> Response:
    now = obt.clock.now()
    if all(v is None for v in (limit, cursor, sort, order, status_, label, q)):
        return json_response({"items": await obt.read_models.clients(now)})
    query = ClientQuery(
        sort=sort or "hostname",
        order=order or "asc",
        statuses=_statuses(status_ or []),
        labels=tuple(_label(v) for v in label or []),
        search=q or "",
        limit=limit,
        cursor=cursor,
    )
    try:
        return json_response(await obt.read_models.client_page(query, now))
    except InvalidCursor as exc:
        raise ApiError(422, "invalid_cursor", str(exc)) from None


def _statuses(values: list[str]) -> frozenset[str]:
    wanted = {s.strip() for v in values for s in v.split(",") if s.strip()}
    unknown = sorted(wanted - set(STATUSES))
    if unknown:
        raise ApiError(
            422,
            "validation_error",
            f"unknown status {', '.join(map(repr, unknown))}; use {', '.join(STATUSES)}",
        )
    return frozenset(wanted)


def _label(value: str) -> tuple[str, str]:
    key, eq, wanted = value.partition("=")
    if not eq or not key:
        raise ApiError(422, "validation_error", f"label filter {value!r} is not key=value")
    return key, wanted


@router.get(
    "/fleet/summary",
    response_model=None,
    responses={200: {"model": FleetSummary}},
    summary="Clients by status and the labels in use, without listing the fleet",
)
async def fleet_summary(obt: OBTDep) -> Response:
    now = obt.clock.now()
    counts = await obt.read_models.fleet_counts(now)
    return json_response({**counts, "labels": await obt.read_models.client_labels(now)})


@router.get(
    "/clients/{client_id}",
    response_model=None,
    responses={200: {"model": ClientDetail}, **NOT_FOUND},
    summary="One client, with its models",
)
async def get_client(client_id: ClientIdPath, obt: OBTDep) -> Response:
    doc = await obt.read_models.client(client_id, obt.clock.now())
    if doc is None:
        raise ApiError(404, "unknown_client", f"no client {client_id!r} is registered")
    return json_response(doc)


@router.get(
    "/clients/{client_id}/uptime",
    responses={**NOT_FOUND, 422: {"model": ErrorResponse}},
    summary="Uptime buckets and status intervals",
)
async def get_uptime(
    client_id: ClientIdPath,
    obt: OBTDep,
    from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: AwareDatetime | None = None,
    bucket: Literal["hour", "day"] = "hour",
) -> Response:
    now = obt.clock.now()
    if await obt.read_models.client(client_id, now) is None:
        raise ApiError(404, "unknown_client", f"no client {client_id!r} is registered")
    try:
        end = to or now
        start = from_ or (end - (timedelta(hours=24) if bucket == "hour" else timedelta(days=90)))
        if start >= end:
            raise ApiError(422, "validation_error", "'from' must be before 'to'")
        return json_response(await obt.read_models.uptime(client_id, start, end, bucket, now))
    except RangeTooLarge as exc:
        raise ApiError(422, "range_too_large", str(exc)) from None
    except (OverflowError, ValueError):
        # Dates near year 1 or 9999 cannot be moved by a bucket's width.
        raise ApiError(422, "validation_error", "the time range is out of bounds") from None


@router.get(
    "/clients/{client_id}/timeline",
    response_model=None,
    responses={200: {"model": TimelinePage}, **NOT_FOUND},
    summary="One client's timeline, newest first",
)
async def client_timeline(
    client_id: ClientIdPath, obt: OBTDep, before: Before = None, limit: Limit = 100
) -> Response:
    if await obt.read_models.client(client_id, obt.clock.now()) is None:
        raise ApiError(404, "unknown_client", f"no client {client_id!r} is registered")
    items, next_before = await obt.read_models.timeline(client_id, before, limit)
    return json_response({"items": items, "next_before": next_before})


@router.get(
    "/timeline",
    response_model=None,
    responses={200: {"model": TimelinePage}},
    summary="The fleet's timeline",
)
async def fleet_timeline(obt: OBTDep, before: Before = None, limit: Limit = 100) -> Response:
    items, next_before = await obt.read_models.timeline(None, before, limit)
    return json_response({"items": items, "next_before": next_before})


@router.get(
    "/models",
    response_model=None,
    responses={200: {"model": ItemsResponse}, 422: {"model": ErrorResponse}},
    summary="Fleet model availability: every host, or a page of hosts",
    description=(
        "Without `hosts_limit`, every model with every host that holds it, as before. With "
        "it, every model with its fleet-wide counts (`installed_count`, `loaded_count`, "
        "`hosts_count`, `digest_counts`) and its hosts among one page of hosts (by hostname, "
        "listed in `hosts`); pass `next_hosts_cursor` as `hosts_cursor` for the next page."
    ),
)
async def fleet_models(
    obt: OBTDep,
    hosts_limit: Annotated[
        int | None, Query(ge=1, le=1000, description="hosts on one page of the matrix")
    ] = None,
    hosts_cursor: Annotated[
        str | None, Query(max_length=2000, description="`next_hosts_cursor` of the last page")
    ] = None,
) -> Response:
    if hosts_limit is None and hosts_cursor is None:
        return json_response({"items": await obt.read_models.models()})
    try:
        return json_response(
            await obt.read_models.models_page(hosts_limit or 100, hosts_cursor, obt.clock.now())
        )
    except InvalidCursor as exc:
        raise ApiError(422, "invalid_cursor", str(exc)) from None


@router.delete(
    "/clients/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, **NOT_FOUND},
    summary="Decommission a client (admin)",
)
async def decommission(client_id: ClientIdPath, obt: OBTDep, _: AdminDep) -> Response:
    await obt.commands.decommission(DecommissionClient(client_id=client_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/clients/{client_id}/revoke-secret",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, **NOT_FOUND},
    summary="Revoke a client's secret (admin); the agent must register again",
)
async def revoke_secret(client_id: ClientIdPath, obt: OBTDep, _: AdminDep) -> Response:
    await obt.commands.revoke_secret(RevokeClientSecret(client_id=client_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
