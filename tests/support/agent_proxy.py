"""A small reverse proxy between agents and the OBT server, for the agent's integration tests.

It passes HTTP requests as they are. WebSocket upgrades it answers with `refuse` (a status,
as a proxy without WebSockets does), or, when `refuse` is None, passes them through and keeps
the pair, so a test can `cut()` every channel mid-stream. It runs its own event loop in a
thread, so synchronous tests drive it like the processes they start.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
START_TIMEOUT_S = 10.0


@dataclass(eq=False)
class _Pair:
    request: web.Request
    upstream: aiohttp.ClientWebSocketResponse


class AgentProxy:
    def __init__(self, target: str, refuse: int | None = 400) -> None:
        self.target = target.rstrip("/")
        self.refuse = refuse
        self.upgrades_refused = 0
        self.channels_passed = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pairs: list[_Pair] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AgentProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    def cut(self) -> int:
        """Drop every passed channel at once, as a network cut would; returns how many."""
        cut: int = self._call(self._cut())
        return cut

    @contextlib.contextmanager
    def running(self) -> Iterator[AgentProxy]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _call(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(START_TIMEOUT_S)

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        await self._cut()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _cut(self) -> int:
        pairs, self._pairs = self._pairs, []
        for pair in pairs:
            # Both sides see the connection end without a clean close: 1011 towards the
            # server (it records an error), a dropped TCP connection towards the agent.
            if pair.request.transport is not None:
                pair.request.transport.abort()
            await pair.upstream.close(code=1011, message=b"cut")
        return len(pairs)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if self.refuse is not None:
                self.upgrades_refused += 1
                return web.Response(status=self.refuse, text="this proxy does not pass WebSockets")
            return await self._pass_channel(request)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method,
            self.target + request.path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=answer.status, body=body, headers=out)

    async def _pass_channel(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        url = "ws://" + self.target.removeprefix("http://") + request.path_qs
        auth = {"Authorization": request.headers.get("Authorization", "")}
        try:
            upstream = await self._session.ws_connect(url, headers=auth, compress=0)
        except aiohttp.WSServerHandshakeError as exc:
            return web.Response(status=exc.status, text="refused upstream")
        downstream = web.WebSocketResponse()
        await downstream.prepare(request)
        pair = _Pair(request, upstream)
        self._pairs.append(pair)
        self.channels_passed += 1
        to_server = asyncio.create_task(_pump(downstream, upstream))
        code, reason = 1000, ""
        try:
            while True:
                message = await upstream.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    await downstream.send_str(message.data)
                elif message.type is aiohttp.WSMsgType.CLOSE:
                    code, reason = message.data, str(message.extra or "")
                    break
                elif message.type is not aiohttp.WSMsgType.BINARY:
                    break
            if not downstream.closed:
                # The server's close (4000 "replaced", 1001 "server stopping") reaches the agent.
                await downstream.close(code=code, message=reason.encode())
        finally:
            to_server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await to_server
            if pair in self._pairs:
                self._pairs.remove(pair)
        return downstream


async def _pump(
    downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
) -> None:
    async for message in downstream:
        if message.type is aiohttp.WSMsgType.TEXT:
            await upstream.send_str(message.data)
    if not upstream.closed:
        await upstream.close(code=downstream.close_code or 1000)
