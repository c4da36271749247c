"""Request and response schemas of API v1. They are not events or domain objects: the routes
convert at the edge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

CLIENT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"

ClientId = Annotated[str, StringConstraints(pattern=CLIENT_ID_PATTERN)]
SessionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{8,64}$")]
ShortText = Annotated[str, StringConstraints(max_length=255)]
LongText = Annotated[str, StringConstraints(max_length=4000)]
Digest = Annotated[str, StringConstraints(max_length=200)]
Size = Annotated[int, Field(ge=0, le=2**62)]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LabelValue = Annotated[str, StringConstraints(max_length=255)]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class PlatformIn(_In):
    system: ShortText = ""
    release: ShortText = ""
    machine: ShortText = ""


class OllamaAtRegistration(_In):
    installed: bool = False
    version: ShortText | None = None
    base_url: ShortText | None = None
    reachable: bool = False


class RegisterRequest(_In):
    client_id: ClientId
    hostname: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    platform: PlatformIn = Field(default_factory=PlatformIn)
    agent_version: Annotated[str, StringConstraints(max_length=64)] = "unknown"
    ollama: OllamaAtRegistration = Field(default_factory=OllamaAtRegistration)
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=64)] = Field(
        default_factory=dict
    )
    session_id: SessionId | None = None


class RegisterResponse(BaseModel):
    client_id: str
    client_secret: str | None = Field(
        None, description="Issued once, on registration with the enrollment token"
    )
    heartbeat_interval_s: float
    timeout_s: float
    server_time: datetime
    status: str


class OllamaInHeartbeat(_In):
    reachable: bool
    version: ShortText | None = None
    latency_ms: Annotated[float, Field(ge=0, le=3_600_000)] | None = None
    error: LongText | None = None


class HeartbeatRequest(_In):
    seq: Annotated[int, Field(ge=0, le=2**62)]
    session_id: SessionId
    sent_at: AwareDatetime | None = None
    ollama: OllamaInHeartbeat
    models_digest: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None


class HeartbeatResponse(BaseModel):
    status: str
    models_wanted: bool
    next_in_s: float
    server_time: datetime


class ModelDetailsIn(_In):
    format: ShortText | None = None
    family: ShortText | None = None
    families: list[ShortText] | None = None
    parameter_size: ShortText | None = None
    quantization_level: ShortText | None = None


class TagModelIn(_In):
    """One item of Ollama's /api/tags."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    model: ShortText | None = None
    modified_at: ShortText | None = None
    size: Size = 0
    digest: Digest
    details: ModelDetailsIn = Field(default_factory=ModelDetailsIn)


class PsModelIn(_In):
    """One item of Ollama's /api/ps; a missing size_vram means 0."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    model: ShortText | None = None
    size: Size = 0
    size_vram: Size = 0
    digest: Digest | None = None
    expires_at: ShortText | None = None
    context_length: Annotated[int, Field(ge=0, le=2**40)] | None = None


class ModelsRequest(_In):
    models: Annotated[list[TagModelIn], Field(max_length=5000)] = Field(default_factory=list)
    loaded: Annotated[list[PsModelIn], Field(max_length=1000)] = Field(default_factory=list)


class ModelsResponse(BaseModel):
    added: list[str]
    removed: list[str]
    changed: list[str]
    loaded: list[str]
    unloaded: list[str]


class ErrorResponse(BaseModel):
    code: str
    detail: str


class OllamaOut(BaseModel):
    reachable: bool | None = None
    version: str | None = None
    error: str | None = None
    latency_ms: float | None = None


class ChannelEnd(BaseModel):
    at: datetime
    reason: Literal["clean", "error", "replaced", "server_stopping", "idle"]


class ClientSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    client_id: str
    hostname: str | None
    status: Literal["online", "degraded", "offline", "stopped", "unknown", "decommissioned"]
    status_since: datetime | None
    last_seen: datetime | None
    registered_at: datetime | None = None
    platform: dict[str, str] | None = None
    agent_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    ollama: OllamaOut
    models_count: int
    loaded_count: int
    uptime_24h: float | None
    clock_skew_ms: int | None = None
    session_id: str | None = None
    position: int | None = None
    transport: Literal["channel", "http"] | None = Field(
        None, description="how the agent talks now: its channel, or HTTP requests"
    )
    connected_since: datetime | None = None
    connection_lost: bool | None = Field(
        None, description="its channel dropped (error or idle) without a deregistration"
    )
    reconnects_24h: int = Field(0, description="times its channel opened again in 24 h")
    last_disconnect: ChannelEnd | None = None


class ClientDetail(ClientSummary):
    models: list[dict[str, Any]]
    loaded: list[dict[str, Any]]


class ItemsResponse(BaseModel):
    items: list[dict[str, Any]]


class ClientList(BaseModel):
    items: list[ClientSummary]


class ClientPage(BaseModel):
    """A page of GET /clients when paging, sorting or filtering (docs/api-shapes.md)."""

    items: list[ClientSummary]
    next_cursor: str | None
    matched: int = Field(description="clients matching the filters, on every page")
    total: int = Field(description="clients in the fleet")
    counts: dict[str, int] = Field(description="clients in the fleet by status")


class FleetSummary(BaseModel):
    total: int
    counts: dict[str, int]
    labels: list[str] = Field(description="every `key=value` label in the fleet, sorted")


class TimelinePage(BaseModel):
    items: list[dict[str, Any]]
    next_before: int | None


class EventPage(BaseModel):
    items: list[dict[str, Any]]
    next_after: int | None
    next_before: int | None


class ClientStateAt(BaseModel):
    at: datetime
    position: int
    client: ClientDetail | None


class FleetStateAt(BaseModel):
    at: datetime
    position: int
    clients: list[ClientDetail]
