"""The OBT server's agent API (/api/v1/agents/...), with HTTP failures mapped to AgentErrors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from agent.errors import (
    AuthRejected,
    ClientUnknown,
    ServerBusy,
    ServerRejected,
    ServerUnreachable,
)

SERVER_TIMEOUT_S = 10.0
M = TypeVar("M", bound=BaseModel)


class Registration(BaseModel):
    model_config = ConfigDict(extra="ignore")
    client_id: str
    client_secret: str | None = None
    heartbeat_interval_s: float = 10.0
    timeout_s: float = 30.0
    server_time: str | None = None


class HeartbeatReply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: str = "ok"
    models_wanted: bool = False
    next_in_s: float | None = None
    server_time: str | None = None


class ObtClient:
    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        timeout_s: float = SERVER_TIMEOUT_S,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._wall_clock = wall_clock

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._session

    async def register(self, body: dict[str, Any], token: str) -> tuple[Registration, bool]:
        """(registration, created): created is True for 201 (the server had never seen us)."""
        status, doc = await self._send("POST", "/api/v1/agents/register", token, body)
        return _parse(Registration, status, doc), status == 201

    async def heartbeat(self, client_id: str, secret: str, body: dict[str, Any]) -> HeartbeatReply:
        path = f"/api/v1/agents/{client_id}/heartbeats"
        status, doc = await self._send("POST", path, secret, body)
        return _parse(HeartbeatReply, status, doc)

    async def put_models(
        self,
        client_id: str,
        secret: str,
        models: list[dict[str, Any]],
        loaded: list[dict[str, Any]],
    ) -> dict[str, Any]:
        path = f"/api/v1/agents/{client_id}/models"
        _, doc = await self._send("PUT", path, secret, {"models": models, "loaded": loaded})
        return doc if isinstance(doc, dict) else {}

    async def deregister(self, client_id: str, secret: str, timeout_s: float | None = None) -> None:
        path = f"/api/v1/agents/{client_id}/deregister"
        await self._send("POST", path, secret, None, timeout_s)

    async def health(self) -> dict[str, Any]:
        _, doc = await self._send("GET", "/api/v1/health", None, None)
        return doc if isinstance(doc, dict) else {}

    async def identify(self, token: str) -> dict[str, Any] | None:
        """What the server takes `token` for ({kind, client_id}); None when the server is too
        old to say. Raises AuthRejected for a token it does not know."""
        try:
            _, doc = await self._send("GET", "/api/v1/agents/credentials", token, None)
        except ClientUnknown:
            return None  # an OBT server without this endpoint
        return doc if isinstance(doc, dict) else None

    async def check_credential(self, path: str, token: str) -> int:
        """POST an empty body, so nothing is recorded. Raises on 401/403/404; otherwise returns
        the status, which proves little when the server validates the body (422) first."""
        try:
            status, _ = await self._send("POST", path, token, {})
        except ServerRejected as exc:
            if isinstance(exc, AuthRejected | ClientUnknown):
                raise
            return exc.status
        return status

    async def _send(
        self,
        method: str,
        path: str,
        token: str | None,
        body: dict[str, Any] | None,
        timeout_s: float | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s else self._timeout
        try:
            async with self._session.request(
                method, self.base_url + path, json=body, headers=headers, timeout=timeout
            ) as response:
                raw = await response.read()
                retry_after = response.headers.get("Retry-After")
                status = response.status
        except TimeoutError:
            raise ServerUnreachable(f"{method} {path}: no answer in time") from None
        except aiohttp.ClientError as exc:
            raise ServerUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        doc = _json_or_none(raw)
        if status >= 400:
            raise_for_answer(status, doc, raw, self._retry_after_s(retry_after))
        return status, doc

    def _retry_after_s(self, value: str | None) -> float | None:
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - self._wall_clock()).total_seconds())


def raise_for_answer(
    status: int, doc: Any, raw: bytes = b"", retry_after_s: float | None = None
) -> NoReturn:
    """Turn an error answer into the agent's error for it: one mapping for HTTP answers and
    channel acks, so both transports are handled exactly alike."""
    code, detail = _error_fields(doc, raw, status)
    if status in (401, 403):
        raise AuthRejected(status, code, detail)
    if status == 404:
        raise ClientUnknown(status, code, detail)
    if status == 429 or status >= 500:
        raise ServerBusy(status, code, detail, retry_after_s)
    raise ServerRejected(status, code, detail)


def parse_heartbeat_reply(status: int, doc: Any) -> HeartbeatReply:
    return _parse(HeartbeatReply, status, doc)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _error_fields(doc: Any, raw: bytes, status: int) -> tuple[str, str]:
    if isinstance(doc, dict):
        return str(doc.get("code") or f"http_{status}"), str(doc.get("detail") or "")
    return f"http_{status}", raw.decode("utf-8", "replace").strip()[:200]


def _parse(model: type[M], status: int, doc: Any) -> M:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ServerRejected(status, "invalid_response", f"unexpected answer: {exc}") from None
