"""The HTTP edge, as one ASGI middleware: body-size and body-time limits, security headers,
request metrics.

One layer rather than three: every layer wraps `send` and `receive` again, and on the
heartbeat path that wrapping is a measurable share of each request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obt.api.errors import error_response
from obt.metrics import Metrics

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
# The dashboard loads only its own scripts and styles.
DASHBOARD_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    b"form-action 'self'",
)
NOT_DASHBOARD = ("/api/", "/docs", "/redoc", "/openapi.json", "/metrics")


class _TooLarge(HTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parsing lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request bodies are limited to {limit} bytes")


class _TooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {seconds:g} s",
            headers={"Connection": "close"},
        )


class Shortcut(Protocol):
    """A route served from here, past the framework (see agents.HeartbeatShortcut)."""

    def match(self, scope: Scope) -> str | None: ...

    async def __call__(self, key: str, scope: Scope, receive: Receive, send: Send, /) -> None: ...


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        metrics: Metrics,
        body_timeout_s: float = 10.0,
        shortcut: Shortcut | None = None,
        channel: Shortcut | None = None,
    ) -> None:
        self.app = app
        self.shortcut = shortcut
        # The agent channel's WebSockets, past the framework's layers: each open channel
        # keeps its whole call stack alive, so every layer skipped is memory per connection.
        self.channel = channel
        # The client list is ~0.5 MB of JSON for 1,000 machines: GETs that accept gzip go
        # through the compressor (it leaves the live event stream alone); the agents' small
        # POSTs skip its wrapping, a measurable cost per heartbeat.
        # Level 6, not Starlette's 9: nearly the same size for JSON at a fraction of the time
        # (a page of clients is built and sent in a few ms). Hashed dashboard assets come
        # gzipped once from obt/api/static.py and pass through untouched.
        self.gzip_app = GZipMiddleware(app, minimum_size=2048, compresslevel=6)
        self.max_bytes = max_body_bytes
        self.metrics = metrics
        # uvicorn bounds neither how long a body may take nor the pause between its chunks:
        # without this, a client trickling bytes holds a connection (and a task) for ever.
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            channel = self.channel
            if channel is not None and (key := channel.match(scope)) is not None:
                await channel(key, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes or declared < 0:
                    await self._reject(scope, receive, send)
                    return
        headers = list(SECURITY_HEADERS)
        if not scope["path"].startswith(NOT_DASHBOARD):
            headers.append(DASHBOARD_CSP)
        seen = 0
        status = 500
        started_response = False
        body_done = False
        body_deadline = asyncio.get_running_loop().time() + self.body_timeout_s

        async def limited_receive() -> Message:
            nonlocal seen, body_done
            if body_done:  # later receives wait for a disconnect: not bounded
                return await receive()
            try:
                async with asyncio.timeout_at(body_deadline):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow(self.body_timeout_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def edge_send(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        app = self.app
        if scope["method"] == "GET" and any(
            name == b"accept-encoding" and b"gzip" in value for name, value in scope["headers"]
        ):
            app = self.gzip_app
        key = self.shortcut.match(scope) if self.shortcut is not None else None
        try:
            if key is not None and self.shortcut is not None:
                await self.shortcut(key, scope, limited_receive, edge_send)
            else:
                await app(scope, limited_receive, edge_send)
        except _TooLarge:
            if not started_response:
                status = 413
                await self._reject(scope, receive, send)
        except _TooSlow as exc:  # raised where no exception handler runs (not a route)
            if not started_response:
                status = 408
                await error_response(408, "request_timeout", exc.detail, {"Connection": "close"})(
                    scope, receive, send
                )
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], name, str(status)).observe(
                time.perf_counter() - started
            )

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "body_too_large", f"request bodies are limited to {self.max_bytes} bytes"
        )
        await response(scope, receive, send)
