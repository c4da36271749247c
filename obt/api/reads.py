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
    ErrorResponse,
    ItemsResponse,
    TimelinePage,
)
from obt.commands.messages import DecommissionClient, RevokeClientSecret
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
    responses={200: {"model": ClientList}},
    summary="Every client's current state",
)
async def list_clients(obt: OBTDep) -> Response:
    return json_response({"items": await obt.read_models.clients(obt.clock.now())})


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
    responses={200: {"model": ItemsResponse}},
    summary="Fleet model availability",
)
async def fleet_models(obt: OBTDep) -> Response:
    return json_response({"items": await obt.read_models.models()})


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
