"""Route dependencies as `Annotated` aliases: the app's parts, credentials, limits.

All are `async def`: FastAPI runs a plain `def` dependency on a worker thread, a thread hop
per dependency per request that the heartbeat path cannot afford.
"""

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


async def get_obt(request: Request) -> OBT:
    obt: OBT = request.app.state.obt
    return obt


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when there is none."""
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


async def bearer_token(
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> str | None:
    return bearer(authorization)


OBTDep = Annotated[OBT, Depends(get_obt)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
BearerDep = Annotated[str | None, Depends(bearer_token)]
ClientIdPath = Annotated[
    str,
    Path(pattern=CLIENT_ID_PATTERN, description="1-64 characters of A-Z a-z 0-9 . _ -"),
]


async def require_admin(obt: OBTDep, token: BearerDep) -> None:
    if token is None:
        raise ApiError(
            401, "not_authenticated", "the admin token is required", {"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(token.encode(), obt.admin_token.encode()):
        raise ApiError(403, "forbidden", "this action needs the admin token")


def rate_limit(request: Request, key: str) -> None:
    check_rate(request.app.state.rate_limiter, key)


def check_rate(limiter: RateLimiter, key: str) -> None:
    """429 when `key` has used up its requests (HTTP requests and channel frames alike)."""
    wait = limiter.check(key)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests for client {key!r}; retry in {math.ceil(wait)} s",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )


AdminDep = Annotated[None, Depends(require_admin)]
