"""Route dependencies as `Annotated` aliases: the app's parts, credentials, limits."""

from __future__ import annotations

import hmac
import math
from typing import Annotated

from fastapi import Depends, Header, Path, Request

from obt.api.errors import ApiError
from obt.api.ratelimit import RateLimiter
from obt.api.schemas import CLIENT_ID_PATTERN
from obt.bootstrap import OBT
from obt.metrics import Metrics


def get_obt(request: Request) -> OBT:
    obt: OBT = request.app.state.obt
    return obt


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def bearer_token(
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "not_authenticated",
            "use the header 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


OBTDep = Annotated[OBT, Depends(get_obt)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
BearerDep = Annotated[str | None, Depends(bearer_token)]
ClientIdPath = Annotated[
    str,
    Path(pattern=CLIENT_ID_PATTERN, description="1-64 characters of A-Z a-z 0-9 . _ -"),
]


def require_admin(obt: OBTDep, token: BearerDep) -> None:
    if token is None:
        raise ApiError(
            401, "not_authenticated", "the admin token is required", {"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(token.encode(), obt.admin_token.encode()):
        raise ApiError(403, "forbidden", "this action needs the admin token")


def rate_limited(request: Request, client_id: ClientIdPath) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.check(client_id)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests for client {client_id!r}; retry in {math.ceil(wait)} s",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )


AdminDep = Annotated[None, Depends(require_admin)]
RateLimitDep = Annotated[None, Depends(rate_limited)]
