"""Agent endpoints: register, heartbeat, model reports, deregister (Bearer credentials)."""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from obt.api.body import json_body, parse_json_body
from obt.api.deps import BearerDep, ClientIdPath, OBTDep, bearer, check_rate, rate_limit
from obt.api.errors import ApiError, handle_error
from obt.api.ratelimit import RateLimiter
from obt.api.schemas import (
    CLIENT_ID_PATTERN,
    ErrorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    ModelsRequest,
    ModelsResponse,
    RegisterRequest,
    RegisterResponse,
)
from obt.bootstrap import OBT
from obt.commands.messages import DeregisterClient, RecordHeartbeat, RegisterClient, ReportModels
from obt.domain.client import InstalledModel, LoadedModel

router = APIRouter(prefix="/agents", tags=["agents"])

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 413, 422, 429, 503)
}


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    return given[:100] if given else f"{request.app.state.server_tag}-{next(_REQUESTS)}"


_REQUESTS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class AgentCall:
    obt: OBT
    client_id: str
    request_id: str


async def agent_call(
    request: Request,
    client_id: ClientIdPath,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> AgentCall:
    """Rate limit, then credentials, before the body is even parsed: a flood costs nothing
    and a bad token is a 401/403, never a 422. One dependency, not four: each one costs."""
    obt: OBT = request.app.state.obt
    rate_limit(request, client_id)
    await obt.commands.authenticate_client(client_id, bearer(authorization))
    return AgentCall(obt, client_id, _request_id(request))


async def authorize_agent(
    obt: OBT, limiter: RateLimiter, client_id: str, token: str | None, request_id: str
) -> AgentCall:
    """`agent_call` for a transport without a Request (the agent channel): same order."""
    check_rate(limiter, client_id)
    await obt.commands.authenticate_client(client_id, token)
    return AgentCall(obt, client_id, request_id)


AgentCallDep = Annotated[AgentCall, Depends(agent_call)]


def _require(token: str | None) -> str:
    if token is None:
        raise ApiError(
            401, "not_authenticated", "a Bearer token is required", {"WWW-Authenticate": "Bearer"}
        )
    return token


@router.get(
    "/credentials",
    responses={401: {"model": ErrorResponse}},
    summary="What this Bearer token is (for `obt-agent doctor`); records nothing",
)
async def credentials(obt: OBTDep, token: BearerDep) -> dict[str, str | None]:
    kind, client_id = obt.commands.identify(token)
    return {"kind": kind, "client_id": client_id}


@router.post(
    "/register",
    response_model=RegisterResponse,
    status_code=status.HTTP_200_OK,
    responses={201: {"model": RegisterResponse}, **ERRORS},
    summary="Register a new client (201) or a known one again (200)",
)
async def register(
    body: RegisterRequest, request: Request, response: Response, obt: OBTDep, token: BearerDep
) -> RegisterResponse:
    limiter = request.app.state.rate_limiter
    if (wait := limiter.check(body.client_id)) > 0:
        raise ApiError(
            429, "rate_limited", "too many registrations", {"Retry-After": str(int(wait) + 1)}
        )
    result = await obt.commands.register(
        RegisterClient(
            client_id=body.client_id,
            hostname=body.hostname,
            platform=body.platform.model_dump(),
            agent_version=body.agent_version,
            labels=dict(body.labels),
            ollama=body.ollama.model_dump(),
            session_id=body.session_id or str(uuid.uuid4()),
            credential=_require(token),
            correlation_id=_request_id(request),
        )
    )
    if result.created:
        response.status_code = status.HTTP_201_CREATED
    settings = obt.settings
    return RegisterResponse(
        client_id=body.client_id,
        client_secret=result.client_secret,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        timeout_s=settings.heartbeat_timeout_s,
        server_time=obt.clock.now(),
        status=result.state.status.value if result.state.status else "unknown",
    )


HEARTBEAT_PATH = "/{client_id}/heartbeats"


@router.post(
    HEARTBEAT_PATH,
    response_model=HeartbeatResponse,
    responses=ERRORS,
    summary="Record a heartbeat",
    openapi_extra=json_body(HeartbeatRequest),
)
async def heartbeat(request: Request, client_id: ClientIdPath) -> Response:
    # Served by `HeartbeatShortcut` from the edge middleware; this route documents it and
    # answers wherever the app runs without that middleware.
    return await record_heartbeat(request, client_id)


async def record_heartbeat(request: Request, client_id: str) -> Response:
    """The hot path skips what costs and adds nothing here: credentials are checked without
    the dependency machinery (still before the body is read), pydantic validates the body
    straight from its bytes, and the answer is serialised once. Errors are the same."""
    call = await agent_call(request, client_id, request.headers.get("authorization"))
    body = parse_json_body(HeartbeatRequest, await request.body())
    answer = await heartbeat_answer(call, body)
    return Response(answer.model_dump_json(), media_type="application/json")


async def heartbeat_answer(call: AgentCall, body: HeartbeatRequest) -> HeartbeatResponse:
    """A heartbeat recorded and answered, whichever transport brought it (HTTP, channel)."""
    obt = call.obt
    ack = await obt.commands.heartbeat(
        RecordHeartbeat(
            client_id=call.client_id,
            seq=body.seq,
            session_id=body.session_id,
            sent_at=body.sent_at,
            ollama=body.ollama.model_dump(),
            models_digest=body.models_digest,
            correlation_id=call.request_id,
        )
    )
    obt.metrics.heartbeats.inc()
    return HeartbeatResponse(
        status=ack.status.value,
        models_wanted=ack.models_wanted,
        next_in_s=obt.settings.heartbeat_interval_s,
        server_time=obt.clock.now(),
    )


@dataclass(frozen=True, slots=True)
class _RouteName:
    path: str


class HeartbeatShortcut:
    """`POST /api/v1/agents/{client_id}/heartbeats` straight from the edge middleware.

    Heartbeats are nearly all of an OBT server's requests. Routing them through the framework
    (matching ~40 routes, the exception and exit-stack layers, solving dependencies) cost as
    much as recording them. The shortcut takes only requests the route would take, with a
    valid client id (others go the usual way and get the usual answers), runs the same
    `record_heartbeat`, and renders failures with the app's own exception handlers.
    """

    def __init__(self, prefix: str) -> None:
        self._prefix = f"{prefix}{router.prefix}/"
        self._suffix = HEARTBEAT_PATH.removeprefix("/{client_id}")
        self._valid_id = re.compile(CLIENT_ID_PATTERN)
        # What the request metrics name the route by (its `path`), as for routed requests.
        self.route = _RouteName(f"{router.prefix}{HEARTBEAT_PATH}")

    def match(self, scope: Scope) -> str | None:
        """The client id when this request is a heartbeat the shortcut serves."""
        path: str = scope["path"]
        if (
            scope["method"] == "POST"
            and path.startswith(self._prefix)
            and path.endswith(self._suffix)
        ):
            client_id = path[len(self._prefix) : -len(self._suffix)]
            if self._valid_id.fullmatch(client_id):
                return client_id
        return None

    async def __call__(self, client_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route
        request = Request(scope, receive, send)
        try:
            response = await record_heartbeat(request, client_id)
        except ClientDisconnect:
            return  # gone before its body arrived: nothing recorded, no one to answer
        except Exception as exc:
            response = await handle_error(request, exc)
        await response(scope, receive, send)


@router.put(
    "/{client_id}/models",
    response_model=ModelsResponse,
    responses=ERRORS,
    summary="Report the installed (/api/tags) and loaded (/api/ps) models",
)
async def report_models(body: ModelsRequest, call: AgentCallDep) -> ModelsResponse:
    return await models_answer(call, body)


async def models_answer(call: AgentCall, body: ModelsRequest) -> ModelsResponse:
    """A model report recorded and answered, whichever transport brought it."""
    _unique([m.name for m in body.models], "models")
    _unique([m.name for m in body.loaded], "loaded")
    installed = [
        InstalledModel(
            name=m.name,
            digest=m.digest,
            size=m.size,
            family=m.details.family,
            parameter_size=m.details.parameter_size,
            quantization=m.details.quantization_level,
            modified_at=m.modified_at,
        )
        for m in body.models
    ]
    loaded = [
        LoadedModel(
            name=m.name,
            digest=m.digest,
            size=m.size,
            size_vram=m.size_vram,
            expires_at=m.expires_at,
            context_length=m.context_length,
        )
        for m in body.loaded
    ]
    report = await call.obt.commands.report_models(
        ReportModels(
            client_id=call.client_id,
            installed=installed,
            loaded=loaded,
            correlation_id=call.request_id,
        )
    )
    return ModelsResponse(
        added=report.added,
        removed=report.removed,
        changed=report.changed,
        loaded=report.loaded,
        unloaded=report.unloaded,
    )


@router.post(
    "/{client_id}/deregister",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS,
    summary="Deregister on a clean agent stop",
)
async def deregister(call: AgentCallDep) -> Response:
    await deregister_agent(call)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def deregister_agent(call: AgentCall) -> None:
    await call.obt.commands.deregister(
        DeregisterClient(client_id=call.client_id, correlation_id=call.request_id)
    )


def _unique(names: list[str], field: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ApiError(422, "validation_error", f"{field}: model {name!r} is listed twice")
        seen.add(name)
