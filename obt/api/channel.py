"""The agent channel: `GET /api/v1/agents/{client_id}/channel` upgraded to a WebSocket.

A transport like HTTP, no more: credentials on the upgrade, then heartbeat, models and
deregister frames answered by `ack` frames from the very functions the HTTP routes run
(obt/api/agents.py), errors rendered by the app's own exception handlers. It is a plain ASGI
endpoint rather than a FastAPI route: a server holds tens of thousands of these loops, so each
keeps only what it needs (see docs/architecture.md, "The agent channel").
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import MutableMapping
from typing import Any

import orjson
from fastapi import Request
from starlette.types import Receive, Scope, Send

from obt.api.agents import (
    authorize_agent,
    deregister_agent,
    heartbeat_answer,
    models_answer,
)
from obt.api.body import parse_json_body
from obt.api.channel_registry import REPLACED, AgentChannel, ChannelRegistry
from obt.api.deps import bearer
from obt.api.errors import ApiError, handle_error
from obt.api.schemas import CLIENT_ID_PATTERN, HeartbeatRequest, ModelsRequest
from obt.bootstrap import OBT
from obt.commands.messages import CloseChannel, OpenChannel
from obt.errors import OBTError

log = logging.getLogger(__name__)

PROTOCOL = 1
CHANNEL_PATH = "/api/v1/agents/{client_id}/channel"
SERVER_STOPPING_TEXT = "server stopping"
_VALID_ID = re.compile(CLIENT_ID_PATTERN)
_SESSION_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
_OPERATION_FRAMES = ("progress", "result")


def close_reason(code: int | None, text: str | None) -> str:
    """What a close the server did not start means for ChannelClosed."""
    if text == SERVER_STOPPING_TEXT:
        return "server_stopping"
    if code in (1000, 1001):
        return "clean"
    return "error"  # 1005/1006: the connection dropped without a close frame; 1009, 1011 ...


def _frame(kind: str, **fields: Any) -> str:
    return orjson.dumps({"type": kind, **fields}).decode()


def _ack(frame_id: Any, status: int, body_json: str) -> str:
    frame_id_json = orjson.dumps(frame_id).decode()
    return f'{{"type":"ack","id":{frame_id_json},"status":{status},"body":{body_json}}}'


def _error(status: int, code: str, detail: str, frame_id: Any = None) -> str:
    body = orjson.dumps({"code": code, "detail": detail}).decode()
    if frame_id is not None:
        return _ack(frame_id, status, body)
    return f'{{"type":"error","status":{status},"body":{body}}}'


def _valid_frame_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**53) < value < 2**53
    return isinstance(value, str) and 0 < len(value) <= 64


class AgentChannelEndpoint:
    """The ASGI app behind the channel's route."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = _Session(scope, receive, send)
        await session.run()


class ChannelShortcut:
    """The channel served straight from the edge middleware (see middleware.Edge): the same
    session as the route's, without the framework's layers kept alive under every channel."""

    def __init__(self, prefix: str = "/api/v1/agents/", suffix: str = "/channel") -> None:
        self._prefix = prefix
        self._suffix = suffix

    def match(self, scope: Scope) -> str | None:
        if scope["type"] != "websocket":
            return None  # lifespan scopes have no path
        path: str = scope["path"]
        if path.startswith(self._prefix) and path.endswith(self._suffix):
            client_id = path[len(self._prefix) : -len(self._suffix)]
            if client_id and "/" not in client_id:
                return client_id
        return None

    async def __call__(self, client_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        scope["path_params"] = {"client_id": client_id}
        await _Session(scope, receive, send).run()


class _Session:
    """One WebSocket from its upgrade to its end."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        app = scope["app"]
        self.obt: OBT = app.state.obt
        self.registry: ChannelRegistry = app.state.channels
        self.limiter = app.state.rate_limiter
        self.client_id: str = scope["path_params"]["client_id"]
        self.token: str | None = None
        self.channel_id = uuid.uuid4().hex
        self.closed = False
        self.max_bytes = self.obt.settings.max_body_bytes

    # ------------------------------------------------------------ helpers

    def _http_request(self) -> Request:
        """A stand-in HTTP request for the app's exception handlers (they read only the app)."""
        scope = {**self.scope, "type": "http", "method": "GET", "query_string": b""}
        return Request(scope)

    async def _error_response(self, exc: Exception) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        response = await handle_error(self._http_request(), exc)
        return response.status_code, bytes(response.body), list(response.raw_headers)

    async def _send_text(self, text: str) -> None:
        if not self.closed:
            await self.send({"type": "websocket.send", "text": text})

    async def _close(self, code: int, text: str) -> None:
        if not self.closed:
            self.closed = True
            await self.send({"type": "websocket.close", "code": code, "reason": text})

    async def _deny(self, exc: Exception) -> None:
        status, body, headers = await self._error_response(exc)
        if "websocket.http.response" in self.scope.get("extensions", {}):
            await self.send(
                {"type": "websocket.http.response.start", "status": status, "headers": headers}
            )
            await self.send({"type": "websocket.http.response.body", "body": body})
        else:  # the server cannot answer the upgrade with a status: it refuses it (403)
            await self.send({"type": "websocket.close", "code": 1008})

    # ------------------------------------------------------------ the session

    async def run(self) -> None:
        message = await self.receive()
        if message["type"] != "websocket.connect":
            return
        if not _VALID_ID.fullmatch(self.client_id):
            await self._deny(
                ApiError(422, "validation_error", "client_id: 1-64 characters of A-Z a-z 0-9 . _ -")
            )
            return
        try:
            self.token = bearer(_header(self.scope, b"authorization"))
            await authorize_agent(
                self.obt, self.limiter, self.client_id, self.token, self.channel_id
            )
        except Exception as exc:
            await self._deny(exc)
            return
        await self.send({"type": "websocket.accept"})
        channel = await self._hello()
        if channel is None:
            return
        code: int | None = None
        text: str | None = None
        settings = self.obt.settings
        try:
            await self._send_text(
                _frame(
                    "welcome",
                    protocol=PROTOCOL,
                    heartbeat_interval_s=settings.heartbeat_interval_s,
                    timeout_s=settings.heartbeat_timeout_s,
                    channel_id=self.channel_id,
                )
            )
            code, text = await self._serve(channel)
        finally:
            await self._record_close(channel, code, text)

    async def _hello(self) -> AgentChannel | None:
        """Wait (bounded) for a valid hello; record the channel; None when it ended first."""
        timeout = self.obt.settings.heartbeat_timeout_s
        while True:
            try:
                async with asyncio.timeout(timeout):
                    message = await self.receive()
            except TimeoutError:
                await self._close(4001, "idle")
                return None
            if message["type"] == "websocket.disconnect":
                return None
            frame, problem = self._parse(message)
            if problem is not None:
                await self._send_text(problem)
                continue
            assert frame is not None
            if frame.get("type") != "hello":
                await self._send_text(
                    _error(
                        422,
                        "hello_required",
                        "the first frame is {type: hello, protocol: 1, session_id}",
                        frame.get("id"),
                    )
                )
                continue
            if frame.get("protocol") != PROTOCOL:
                await self._send_text(
                    _error(422, "unsupported_protocol", f"this server speaks protocol {PROTOCOL}")
                )
                continue
            session_id = frame.get("session_id")
            if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
                await self._send_text(
                    _error(422, "validation_error", "session_id: 8-64 of A-Z a-z 0-9 -")
                )
                continue
            return await self._open(session_id)

    async def _open(self, session_id: str) -> AgentChannel | None:
        client = self.scope.get("client")
        remote = f"{client[0]}:{client[1]}" if client else None
        registry = self.registry
        async with registry.opening(self.client_id):
            old = registry.current(self.client_id)
            replacing = old.channel_id if old is not None and old.closing is None else None
            try:
                await self.obt.commands.open_channel(
                    OpenChannel(
                        client_id=self.client_id,
                        channel_id=self.channel_id,
                        session_id=session_id,
                        remote=remote,
                        replacing=replacing,
                        correlation_id=self.channel_id,
                    )
                )
            except Exception as exc:
                status, body, _ = await self._error_response(exc)
                await self._send_text(
                    f'{{"type":"error","status":{status},"body":{body.decode()}}}'
                )
                await self._close(1013 if status == 503 else 1008, "hello refused")
                return None
            channel = AgentChannel(
                self.client_id,
                self.channel_id,
                session_id,
                self._send_text,
                self._close,
                registry.clock(),
            )
            old = registry.attach(channel)
        if old is not None:
            await old.close("replaced", *REPLACED)
        return channel

    async def _serve(self, channel: AgentChannel) -> tuple[int | None, str | None]:
        """Answer frames until the channel ends; returns the close code and reason text."""
        clock = self.registry.clock
        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                return message.get("code"), message.get("reason")
            channel.last_frame_at = clock()
            size = len(message.get("text") or message.get("bytes") or b"")
            if size > self.max_bytes:  # uvicorn refuses these itself (ws_max_size)
                await self._close(1009, f"frames are limited to {self.max_bytes} bytes")
                continue
            answer = await self._answer(message)
            if answer is not None:
                try:  # noqa: SIM105 (no context manager to build for every ack)
                    await self._send_text(answer)
                except (OSError, RuntimeError):
                    pass  # gone or closing: the next receive says how

    def _parse(self, message: MutableMapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes")
        try:
            frame = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            return None, _error(422, "invalid_json", "a frame is one JSON object")
        if not isinstance(frame, dict):
            return None, _error(422, "invalid_frame", "a frame is one JSON object with a type")
        frame_id = frame.get("id")
        if frame_id is not None and not _valid_frame_id(frame_id):
            return None, _error(422, "invalid_frame", "id: an integer or a string of 1-64")
        return frame, None

    async def _answer(self, message: MutableMapping[str, Any]) -> str | None:
        frame, problem = self._parse(message)
        if problem is not None:
            return problem
        assert frame is not None
        kind = frame.get("type")
        frame_id = frame.get("id")
        if kind in _OPERATION_FRAMES:
            if not isinstance(frame.get("operation_id"), str):
                return _error(422, "invalid_frame", f"a {kind} frame names its operation_id")
            await self.registry.dispatch(self.client_id, frame)
            return None
        if kind not in ("heartbeat", "models", "deregister"):
            detail = f"unknown frame type {kind!r}" if kind != "hello" else "hello was received"
            return _error(422, "invalid_frame", detail, frame_id)
        if frame_id is None:
            return _error(422, "invalid_frame", f"a {kind} frame needs an id for its ack")
        try:
            call = await authorize_agent(
                self.obt, self.limiter, self.client_id, self.token, f"{self.channel_id}-{frame_id}"
            )
            if kind == "heartbeat":
                body = parse_json_body(HeartbeatRequest, orjson.dumps(frame.get("body")))
                answer = await heartbeat_answer(call, body)
                return _ack(frame_id, 200, answer.model_dump_json())
            if kind == "models":
                report = parse_json_body(ModelsRequest, orjson.dumps(frame.get("body")))
                models = await models_answer(call, report)
                return _ack(frame_id, 200, models.model_dump_json())
            await deregister_agent(call)
            return _ack(frame_id, 204, "null")
        except Exception as exc:
            status, body_bytes, _ = await self._error_response(exc)
            return _ack(frame_id, status, body_bytes.decode())

    async def _record_close(
        self, channel: AgentChannel, code: int | None, text: str | None
    ) -> None:
        if channel.closing is None:
            channel.closing = close_reason(code, text)
        try:
            if channel.closing != "replaced":  # the replacing channel recorded it
                await self.obt.commands.close_channel(
                    CloseChannel(
                        client_id=self.client_id,
                        channel_id=self.channel_id,
                        reason=channel.closing,
                        code=code,
                        correlation_id=self.channel_id,
                    )
                )
        except OBTError as exc:
            log.warning("could not record the end of channel %s: %s", self.channel_id, exc)
        finally:
            self.registry.detach(channel)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None
