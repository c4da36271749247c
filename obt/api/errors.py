"""The only place OBT errors become HTTP answers: JSON `{code, detail}` with a stable code."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from obt.errors import (
    AuthError,
    ClientIsDecommissioned,
    ConcurrencyError,
    CorruptEvent,
    Forbidden,
    InvalidAlertRule,
    InvalidCommand,
    InvalidOperation,
    NotAuthenticated,
    OBTError,
    StoreError,
    StoreUnavailable,
    UnknownAlertRule,
    UnknownClient,
    UnknownOperation,
)

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "store_unavailable",
}


class ApiError(Exception):
    """An error a route raises directly, with its status and stable code."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def json_response(data: Any, status: int = 200) -> Response:
    """JSON of data OBT built itself (read models): no second validation on the way out."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        {"code": code, "detail": detail, **extra}, status_code=status, headers=headers
    )


def _status_for(exc: Exception) -> tuple[int, str, dict[str, str] | None]:
    match exc:
        case NotAuthenticated():
            return 401, "not_authenticated", {"WWW-Authenticate": "Bearer"}
        case ClientIsDecommissioned():
            return 403, "client_decommissioned", None
        case Forbidden():
            return 403, "forbidden", None
        case AuthError():
            return 401, "not_authenticated", {"WWW-Authenticate": "Bearer"}
        case UnknownClient():
            return 404, "unknown_client", None
        case InvalidCommand():
            return 409, exc.code, None
        case UnknownOperation():
            return 404, "unknown_operation", None
        case InvalidOperation():
            return 422, exc.code, None
        case UnknownAlertRule():
            return 404, "unknown_alert_rule", None
        case InvalidAlertRule():
            return 422, exc.code, None
        case ConcurrencyError():
            return 409, "conflict", None
        case StoreUnavailable():
            return 503, "store_unavailable", {"Retry-After": str(exc.retry_after_s)}
        case CorruptEvent():
            return 500, "corrupt_event", None
        case StoreError():
            return 503, "store_error", {"Retry-After": "10"}
    return 500, "internal_error", None


def _path_exists(request: Request) -> bool:
    """Whether a route other than the dashboard's catch-all matches this path."""
    for route in request.app.routes:
        if getattr(route, "name", None) == "dashboard":
            continue
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            return True
    return False


async def handle_error(request: Request, exc: Exception) -> Response:
    """The answer the app's exception handlers give for `exc`, for code that runs outside
    the framework's exception layer (the heartbeat shortcut)."""
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            response: Response = await handler(request, exc)
            return response
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(
            [{k: e.get(k) for k in ("loc", "msg", "type")} for e in exc.errors()]
        )
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        detail = f"{where}: {first.get('msg')}" if where else str(first.get("msg", "invalid"))
        return error_response(422, "validation_error", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405 and not _path_exists(request):
            # Only the dashboard's catch-all (GET) matched: for any other method the path
            # does not exist at all.
            return error_response(404, "not_found", f"no endpoint {request.url.path}")
        code = HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(OBTError)
    async def _obt(_: Request, exc: OBTError) -> JSONResponse:
        status, code, headers = _status_for(exc)
        if status >= 500:
            log.error("%s: %s", code, exc)
        return error_response(status, code, str(exc), headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", "an unexpected error occurred; see the log")
