"""Fleet operation endpoints (admin token): request, list, show, cancel.

Targets are resolved here to registered, not decommissioned client ids (by id or by labels,
from the clients read model); what an operation may be is decided by obt/domain/operations.py.
Dispatch to the agents is not part of these endpoints.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import Field, StringConstraints

from obt.api.channel_registry import ChannelRegistry
from obt.api.deps import AdminDep, OBTDep
from obt.api.errors import ApiError, json_response
from obt.api.schemas import ClientId, ErrorResponse, LabelKey, LabelValue, _In
from obt.commands.operations import RequestOperation
from obt.errors import AgentUnreachable, UnknownOperation
from obt.projections.clients import ClientsProjector
from obt.projections.operations import OperationsProjector
from obt.store.ports import Doc

router = APIRouter(prefix="/operations", tags=["operations"])

OperationIdPath = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the operation's id")
]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 422)
}


class TargetsIn(_In):
    client_ids: Annotated[list[ClientId], Field(min_length=1, max_length=10_000)] | None = None
    labels: Annotated[dict[LabelKey, LabelValue], Field(min_length=1, max_length=64)] | None = None


class OperationIn(_In):
    action: Literal["pull", "delete"]
    model: Annotated[str, StringConstraints(min_length=1, max_length=600)]
    targets: TargetsIn
    max_parallel: Annotated[int, Field(ge=1, le=1000)] = 4
    expires_in_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 3600.0


def _projector(obt: Any) -> OperationsProjector:
    projector = obt.runner.projector("operations")
    assert isinstance(projector, OperationsProjector)
    return projector


def _resolve(docs: dict[str, Doc], targets: TargetsIn) -> tuple[list[str], dict[str, Any]]:
    if (targets.client_ids is None) == (targets.labels is None):
        raise ApiError(422, "validation_error", "targets: give client_ids or labels (one)")
    active = {cid for cid, d in docs.items() if d.get("status") != "decommissioned"}
    if targets.client_ids is not None:
        unknown = sorted(set(targets.client_ids) - active)
        if unknown:
            raise ApiError(
                422, "unknown_targets", f"not registered (or decommissioned): {unknown[:10]}"
            )
        return sorted(set(targets.client_ids)), {"client_ids": sorted(set(targets.client_ids))}
    wanted = targets.labels or {}
    hosts = sorted(
        cid
        for cid in active
        if all((docs[cid].get("labels") or {}).get(k) == v for k, v in wanted.items())
    )
    return hosts, {"labels": dict(wanted)}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ERRORS,
    summary="Pull or delete a model on chosen hosts",
)
async def request_operation(
    body: OperationIn, request: Request, obt: OBTDep, _: AdminDep
) -> dict[str, Any]:
    clients = obt.runner.projector("clients")
    assert isinstance(clients, ClientsProjector)
    hosts, selector = _resolve(clients.docs, body.targets)
    client = request.client
    state = await obt.operations.request(
        RequestOperation(
            action=body.action,
            model=body.model,
            targets=hosts,
            selector=selector,
            max_parallel=body.max_parallel,
            expires_in_s=body.expires_in_s,
            metadata={
                "source": client.host if client else None,
                "user_agent": request.headers.get("user-agent", "")[:300],
            },
        )
    )
    return {"operation_id": state.operation_id, "targets": sorted(state.targets)}


@router.get("", responses=ERRORS, summary="Every operation, newest first")
async def list_operations(obt: OBTDep, _: AdminDep) -> Response:
    docs = sorted(_projector(obt).docs.values(), key=lambda d: d["requested_at"], reverse=True)
    return json_response({"items": docs})


@router.get("/{operation_id}", responses=ERRORS, summary="One operation and its hosts")
async def show_operation(operation_id: OperationIdPath, obt: OBTDep, _: AdminDep) -> Response:
    state = await obt.operations.load(operation_id)
    if not state.requested:
        raise UnknownOperation(operation_id)
    doc = _projector(obt).docs.get(operation_id)
    return json_response(doc if doc is not None else {"id": operation_id, "pending": True})


@router.post(
    "/{operation_id}/cancel",
    responses=ERRORS,
    summary="Cancel what is still queued or running",
)
async def cancel_operation(
    operation_id: OperationIdPath, request: Request, obt: OBTDep, _: AdminDep
) -> dict[str, Any]:
    running = await obt.operations.cancel(operation_id)
    channels: ChannelRegistry = request.app.state.channels
    told = []
    for client_id in running:
        with contextlib.suppress(AgentUnreachable):  # it reports a result when it is back
            await channels.send(client_id, {"type": "cancel", "operation_id": operation_id})
            told.append(client_id)
    return {"operation_id": operation_id, "cancelled": True, "agents_told": told}
