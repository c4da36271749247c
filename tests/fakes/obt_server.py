"""A fake of the OBT server's agent API (/api/v1/agents/...), for tests of the agent itself.

It keeps only what the agent's behaviour depends on: credentials, heartbeats, model reports
and the models_wanted rule. Failures are injected with `fail_next` or `down`.

It also serves the agent channel (a real WebSocket, as the contract has it): hello/welcome,
acks for heartbeat and models frames (with `fail_next` applied to frames too), one channel
per client (a newer one closes the older with 4000 "replaced"). `refuse_upgrade` answers the
upgrade with a plain HTTP status, as a proxy without WebSockets does; `cut_next_frames` closes
the channel instead of acking, as a connection cut mid-stream does.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agent.digest import models_digest


@dataclass
class FakeObtServer:
    enrollment_token: str = "enrol-test-token"
    interval_s: float = 10.0
    secrets: dict[str, str] = field(default_factory=dict)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    heartbeat_via: list[str] = field(default_factory=list)  # "http" or "channel", per heartbeat
    model_reports: list[dict[str, Any]] = field(default_factory=list)
    deregistrations: list[str] = field(default_factory=list)
    auth_seen: list[str] = field(default_factory=list)
    report_digest: dict[str, str] = field(default_factory=dict)
    # (status, headers) or (status, headers, code) answered to the next agent requests.
    fail_next: list[tuple[int, dict[str, str]] | tuple[int, dict[str, str], str]] = field(
        default_factory=list
    )
    down: bool = False
    refuse_upgrade: int | None = None
    cut_next_frames: int = 0
    stall_next_frames: int = 0  # take these frames and never ack them (a stalled channel)
    deregister_frames: bool = True
    hellos: list[dict[str, Any]] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    channels: dict[str, web.WebSocketResponse] = field(default_factory=dict)
    channels_opened: int = 0
    close_codes: list[int | None] = field(default_factory=list)  # as each channel ended
    upgrades_refused: int = 0
    base_url: str = ""
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition | None = None

    def revoke(self, client_id: str) -> None:
        self.secrets.pop(client_id, None)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (with a deadline) until a request has made `predicate` true."""
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            if self.down:
                if request.transport is not None:
                    request.transport.close()
                raise web.HTTPServiceUnavailable
            self.auth_seen.append(request.headers.get("Authorization", ""))
            if self.fail_next and not request.path.endswith("/channel"):
                status, headers, *code = self.fail_next.pop(0)
                return _error(status, code[0] if code else "injected", "injected failure", headers)
            return await handler(request)
        finally:
            await self._notify()

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _register(self, request: web.Request) -> web.Response:
        body = await request.json()
        client_id = body["client_id"]
        token = _bearer(request)
        known = client_id in self.secrets
        if token == self.enrollment_token:
            self.secrets[client_id] = secrets.token_urlsafe(16)
            issued: str | None = self.secrets[client_id]
        elif known and token == self.secrets[client_id]:
            issued = None
        else:
            return _error(401, "invalid_credentials", "unknown token")
        self.registrations.append({**body, "_issued": issued})
        doc = {
            "client_id": client_id,
            "client_secret": issued,
            "heartbeat_interval_s": self.interval_s,
            "timeout_s": self.interval_s * 3,
            "server_time": "2026-11-27T12:00:00Z",
        }
        return web.json_response(doc, status=200 if known else 201)

    async def _credentials(self, request: web.Request) -> web.Response:
        token = _bearer(request)
        if token and token == self.enrollment_token:
            return web.json_response({"kind": "enrollment_token", "client_id": None})
        for client_id, secret in self.secrets.items():
            if token == secret:
                return web.json_response({"kind": "client_secret", "client_id": client_id})
        return _error(401, "not_authenticated", "unknown or revoked token")

    def _refusal(self, request: web.Request) -> web.Response | None:
        client_id = request.match_info["client_id"]
        if client_id not in self.secrets:
            return _error(404, "unknown_client", f"no client {client_id}")
        if _bearer(request) != self.secrets[client_id]:
            return _error(401, "invalid_credentials", "bad secret")
        return None

    async def _heartbeat(self, request: web.Request) -> web.Response:
        if refusal := self._refusal(request):
            return refusal
        client_id = request.match_info["client_id"]
        status, doc = self._record_heartbeat(client_id, await request.json(), "http")
        return web.json_response(doc, status=status)

    def _record_heartbeat(self, client_id: str, body: dict[str, Any], via: str) -> tuple[int, Any]:
        self.heartbeats.append(body)
        self.heartbeat_via.append(via)
        wanted = body.get("models_digest") != self.report_digest.get(client_id)
        return 200, {"status": "ok", "models_wanted": wanted, "next_in_s": self.interval_s}

    async def _models(self, request: web.Request) -> web.Response:
        if refusal := self._refusal(request):
            return refusal
        status, doc = self._record_models(request.match_info["client_id"], await request.json())
        return web.json_response(doc, status=status)

    def _record_models(self, client_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        self.model_reports.append(body)
        self.report_digest[client_id] = models_digest(
            ((m["name"], m["digest"]) for m in body["models"]),
            ((m["name"], m["size_vram"]) for m in body["loaded"]),
        )
        return 200, {"added": [], "removed": [], "changed": []}

    async def _deregister(self, request: web.Request) -> web.Response:
        if refusal := self._refusal(request):
            return refusal
        self.deregistrations.append(request.match_info["client_id"])
        return web.Response(status=204)

    # -- the channel ------------------------------------------------------------------------

    async def _channel(self, request: web.Request) -> web.StreamResponse:
        client_id = request.match_info["client_id"]
        if self.refuse_upgrade is not None:
            self.upgrades_refused += 1
            return _error(self.refuse_upgrade, "no_upgrade", "this proxy does not pass WebSockets")
        if refusal := self._refusal(request):
            return refusal
        secret = _bearer(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        hello = await ws.receive()
        if hello.type is not web.WSMsgType.TEXT:
            return ws
        self.hellos.append(json.loads(hello.data))
        await ws.send_json(
            {
                "type": "welcome",
                "protocol": 1,
                "heartbeat_interval_s": self.interval_s,
                "timeout_s": self.interval_s * 3,
            }
        )
        older = self.channels.get(client_id)
        self.channels[client_id] = ws
        self.channels_opened += 1
        await self._notify()
        if older is not None:
            await older.close(code=4000, message=b"replaced")
        close_code: int | None = None
        try:
            while True:
                message = await ws.receive()
                if message.type is web.WSMsgType.CLOSE:
                    close_code = message.data  # the agent's own code, not our reply's
                if message.type is not web.WSMsgType.TEXT:
                    break
                frame = json.loads(message.data)
                self.frames.append(frame)
                if frame.get("type") in ("heartbeat", "models", "deregister"):
                    if self.cut_next_frames > 0:
                        self.cut_next_frames -= 1
                        await ws.close(code=1011, message=b"cut")
                        break
                    if self.stall_next_frames > 0:
                        self.stall_next_frames -= 1
                        await self._notify()
                        continue
                    status, doc = self._answer_frame(client_id, secret, frame)
                    await ws.send_json(
                        {"type": "ack", "id": frame["id"], "status": status, "body": doc}
                    )
                await self._notify()
        finally:
            self.close_codes.append(close_code or ws.close_code)
            if self.channels.get(client_id) is ws:
                del self.channels[client_id]
            await self._notify()
        return ws

    def _answer_frame(self, client_id: str, secret: str, frame: dict[str, Any]) -> tuple[int, Any]:
        if self.fail_next:
            status, _, *code = self.fail_next.pop(0)
            return status, {"code": code[0] if code else "injected", "detail": "injected"}
        if self.secrets.get(client_id) != secret:
            return 401, {"code": "invalid_credentials", "detail": "bad secret"}
        if frame["type"] == "heartbeat":
            return self._record_heartbeat(client_id, frame["body"], "channel")
        if frame["type"] == "deregister":
            if not self.deregister_frames:
                return 422, {"code": "invalid_frame", "detail": "unknown frame type"}
            self.deregistrations.append(client_id)
            return 204, None
        return self._record_models(client_id, frame["body"])

    async def send_to_agent(self, client_id: str, frame: dict[str, Any]) -> None:
        await self.channels[client_id].send_json(frame)

    async def close_channel(self, client_id: str, code: int, message: bytes = b"") -> None:
        await self.channels[client_id].close(code=code, message=message)

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def start(self) -> str:
        self._changed = asyncio.Condition()
        app = web.Application(middlewares=[self._gate])
        app.router.add_post("/api/v1/agents/register", self._register)
        app.router.add_post("/api/v1/agents/{client_id}/heartbeats", self._heartbeat)
        app.router.add_put("/api/v1/agents/{client_id}/models", self._models)
        app.router.add_post("/api/v1/agents/{client_id}/deregister", self._deregister)
        app.router.add_get("/api/v1/health", self._health)
        app.router.add_get("/api/v1/agents/credentials", self._credentials)
        app.router.add_get("/api/v1/agents/{client_id}/channel", self._channel)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.base_url

    async def stop(self) -> None:
        for ws in list(self.channels.values()):
            await ws.close(code=1001, message=b"server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeObtServer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()


def _bearer(request: web.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


def _error(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"code": code, "detail": detail}, status=status, headers=headers)
