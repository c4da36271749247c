"""A small client for Ollama's HTTP API that turns every failure into OllamaUnavailable.

The agent must survive whatever Ollama does (down, slow, erroring, odd JSON), so nothing here
raises anything else for I/O or parsing problems; `snapshot()` never raises at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from agent.digest import models_digest
from agent.errors import OllamaUnavailable

OLLAMA_TIMEOUT_S = 5.0
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

    async def _request(self, method: str, path: str) -> bytes:
        url = self.base_url + path
        try:
            async with self._session.request(method, url, timeout=self._timeout) as response:
                body = await response.read()
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


def _error_text(body: bytes) -> str:
    """Ollama reports errors as {"error": "..."}; fall back to the start of the raw body."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])[:200]
    return body.decode("utf-8", "replace").strip()[:200] or "(empty body)"
