"""Commands: what a caller asks OBT to do, named in the imperative."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from obt.domain.client import InstalledModel, LoadedModel


@dataclass(frozen=True, slots=True)
class RegisterClient:
    client_id: str
    hostname: str
    platform: dict[str, str]
    agent_version: str
    labels: dict[str, str]
    ollama: dict[str, Any]
    session_id: str
    credential: str
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordHeartbeat:
    client_id: str
    seq: int
    session_id: str
    sent_at: datetime | None
    ollama: dict[str, Any]
    models_digest: str | None
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReportModels:
    client_id: str
    installed: list[InstalledModel] = field(default_factory=list)
    loaded: list[LoadedModel] = field(default_factory=list)
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeregisterClient:
    client_id: str
    reason: str = "agent stopped"
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class DecommissionClient:
    client_id: str
    reason: str = "removed by an admin"
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class RevokeClientSecret:
    client_id: str
    reason: str = "revoked by an admin"
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class DetectTimeouts:
    """Sweep every watched client for silence longer than the timeout."""


@dataclass(frozen=True, slots=True)
class OpenChannel:
    client_id: str
    channel_id: str
    session_id: str
    remote: str | None
    replacing: str | None = None  # the client's channel this one replaces, on this server
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class CloseChannel:
    client_id: str
    channel_id: str
    reason: str  # clean | error | replaced | server_stopping | idle
    code: int | None = None
    correlation_id: str | None = None
