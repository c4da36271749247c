"""A small client for Ollama's HTTP API that turns every failure into OllamaUnavailable.

The agent must survive whatever Ollama does (down, slow, erroring, odd JSON), so nothing here
raises anything else for I/O or parsing problems; `snapshot()` never raises at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from agent.digest import models_digest
from agent.errors import OllamaRefused, OllamaUnavailable

OLLAMA_TIMEOUT_S = 5.0
# A pull streams for as long as the download takes; only a stream silent this long is dead
# (Ollama verifies a large blob's digest without a word for a while).
PULL_SILENCE_S = 600.0
T = TypeVar("T")


class ModelDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")
    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class InstalledModel(BaseModel):
    """An item of /api/tags, kept in Ollama's shape because PUT /models forwards it."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    model: str = ""
    modified_at: str | None = None
    size: int
    digest: str
    details: ModelDetails = Field(default_factory=ModelDetails)


class LoadedModel(BaseModel):
    """An item of /api/ps; older Ollama versions omit size_vram, which then means 0."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    model: str = ""
    size: int
    size_vram: int = 0
    digest: str = ""
    details: ModelDetails = Field(default_factory=ModelDetails)
    expires_at: str | None = None
    context_length: int | None = None

    @field_validator("size_vram", mode="before")
    @classmethod
    def _null_is_zero(cls, value: Any) -> Any:
        return 0 if value is None else value


class _Tags(BaseModel):
    models: list[InstalledModel] | None = None


class _Ps(BaseModel):
    models: list[LoadedModel] | None = None


class _Version(BaseModel):
    version: str


@dataclass(frozen=True)
class OllamaSnapshot:
    reachable: bool
    version: str | None = None
    latency_ms: float | None = None
    error: str | None = None
    installed: tuple[InstalledModel, ...] = ()
    loaded: tuple[LoadedModel, ...] = ()

    @property
    def models_digest(self) -> str:
        return models_digest(
            ((m.name, m.digest) for m in self.installed),
            ((m.name, m.size_vram) for m in self.loaded),
        )


@dataclass(frozen=True)
class PullProgress:
    """One line of /api/pull's NDJSON stream."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


class OllamaClient:
    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        timeout_s: float = OLLAMA_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        self._clock = clock

    async def banner(self) -> str:
        """GET / answers "Ollama is running"; anything else is some other server."""
        return (await self._request("GET", "/")).decode("utf-8", "replace").strip()

    async def version(self) -> str:
        return self._parse(
            "/api/version", await self._request("GET", "/api/version"), _Version
        ).version

    async def installed(self) -> list[InstalledModel]:
        return self._parse("/api/tags", await self._request("GET", "/api/tags"), _Tags).models or []

    async def loaded(self) -> list[LoadedModel]:
        return self._parse("/api/ps", await self._request("GET", "/api/ps"), _Ps).models or []

    async def snapshot(self) -> OllamaSnapshot:
        version: str | None = None
        latency_ms: float | None = None
        try:
            started = self._clock()
            version = await self.version()
            latency_ms = round((self._clock() - started) * 1000, 1)
            installed = await self.installed()
            loaded = await self.loaded()
        except OllamaUnavailable as exc:
            return OllamaSnapshot(
                reachable=False, version=version, latency_ms=latency_ms, error=exc.reason
            )
        return OllamaSnapshot(
            reachable=True,
            version=version,
            latency_ms=latency_ms,
            installed=tuple(installed),
            loaded=tuple(loaded),
        )

    async def pull(self, model: str) -> AsyncIterator[PullProgress]:
        """Stream `POST /api/pull`'s progress. An `{"error": ...}` line (Ollama answers 200 and
        reports failures in the stream) or a stream that ends before "success" raises
        OllamaRefused; no answer raises OllamaUnavailable. Closing the iterator (a cancelled
        task) closes the request, which makes Ollama stop the download (it keeps what it
        has and resumes from there next time)."""
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeout_s, sock_read=PULL_SILENCE_S
        )
        succeeded = False
        try:
            async with self._session.post(
                self.base_url + "/api/pull", json={"model": model, "stream": True}, timeout=timeout
            ) as response:
                if response.status >= 400:
                    raise OllamaRefused(_error_text(await response.read()))
                async for raw in response.content:
                    progress = _progress_line(raw)
                    if progress is None:
                        continue
                    succeeded = progress.status == "success"
                    yield progress
        except TimeoutError:
            raise OllamaUnavailable(
                f"the pull stream was silent for {PULL_SILENCE_S:g} s"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise OllamaUnavailable(f"cannot connect to {self.base_url}: {exc.os_error}") from None
        except aiohttp.ClientError as exc:
            raise OllamaUnavailable(f"the pull broke off: {type(exc).__name__}: {exc}") from None
        if not succeeded:
            raise OllamaRefused("the pull stream ended before success")

    async def delete(self, model: str) -> None:
        """`DELETE /api/delete`; a 404 (no such model) and any other error raise OllamaRefused."""
        await self._request("DELETE", "/api/delete", {"model": model}, refused=True)

    async def _request(
        self, method: str, path: str, json_body: Any = None, refused: bool = False
    ) -> bytes:
        """The answer's body; an error answer raises OllamaUnavailable, or with `refused`
        OllamaRefused with Ollama's own text (a model operation Ollama said no to)."""
        url = self.base_url + path
        try:
            async with self._session.request(
                method, url, json=json_body, timeout=self._timeout
            ) as response:
                body = await response.read()
                if response.status >= 400 and refused:
                    raise OllamaRefused(_error_text(body))
                if response.status >= 400:
                    raise OllamaUnavailable(
                        f"HTTP {response.status} from {path}: {_error_text(body)}"
                    )
                return body
        except TimeoutError:
            raise OllamaUnavailable(f"no answer from {path} within {self._timeout_s:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise OllamaUnavailable(f"cannot connect to {self.base_url}: {exc.os_error}") from None
        except aiohttp.ClientError as exc:
            raise OllamaUnavailable(f"{path} failed: {type(exc).__name__}: {exc}") from None

    def _parse(self, path: str, body: bytes, shape: type[T]) -> T:
        try:
            return TypeAdapter(shape).validate_json(body)
        except ValidationError as exc:
            if any(error["type"] == "json_invalid" for error in exc.errors()):
                raise OllamaUnavailable(f"invalid JSON from {path}") from None
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise OllamaUnavailable(
                f"unexpected answer from {path}: {where}: {first['msg']}"
            ) from None


def _progress_line(raw: bytes) -> PullProgress | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None  # a blank or broken line says nothing; the stream's end decides
    if not isinstance(doc, dict):
        return None
    if "error" in doc:
        raise OllamaRefused(str(doc["error"])[:500])
    return PullProgress(
        status=str(doc.get("status", "")),
        digest=doc.get("digest") if isinstance(doc.get("digest"), str) else None,
        total=_count(doc.get("total")),
        completed=_count(doc.get("completed")),
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _error_text(body: bytes) -> str:
    """Ollama reports errors as {"error": "..."}; fall back to the start of the raw body."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])[:200]
    return body.decode("utf-8", "replace").strip()[:200] or "(empty body)"
