"""The v1 event catalogue: frozen, past-tense facts, converted to plain data at the store edge.

Times inside event data are timezone-aware datetimes here and ISO-8601 strings when stored.
The envelope (stream, version, position, recorded_at) belongs to the store, not to these.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, ClassVar

SYSTEM_STREAM = "system"
CLIENT_STREAM_PREFIX = "client-"


def client_stream(client_id: str) -> str:
    return f"{CLIENT_STREAM_PREFIX}{client_id}"


def client_id_of(stream: str) -> str | None:
    if stream.startswith(CLIENT_STREAM_PREFIX):
        return stream[len(CLIENT_STREAM_PREFIX) :]
    return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    SCHEMA_VERSION: ClassVar[int] = 1
    DATETIME_FIELDS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            data[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Event:
        kwargs = data
        if cls.DATETIME_FIELDS:
            kwargs = dict(data)
            for name in cls.DATETIME_FIELDS:
                value = kwargs.get(name)
                if isinstance(value, str):
                    kwargs[name] = datetime.fromisoformat(value)
        try:
            return cls(**kwargs)
        except TypeError:
            # Stored data with fields this version does not know (or lacks defaults for):
            # keep the known ones and let a missing one fail loudly below.
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in kwargs.items() if k in names})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientEvent(Event):
    client_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientRegistered(ClientEvent):
    hostname: str
    platform: dict[str, str]
    agent_version: str
    labels: dict[str, str]
    ollama: dict[str, Any]  # installed, version, base_url, reachable
    session_id: str
    secret_sha256: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientReregistered(ClientEvent):
    hostname: str
    platform: dict[str, str]
    agent_version: str
    labels: dict[str, str]
    ollama: dict[str, Any]
    session_id: str
    previous_session_id: str | None
    secret_sha256: str | None  # set when a new secret was issued (the old one is revoked)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatReceived(ClientEvent):
    seq: int
    session_id: str
    # The agent's clock, ISO-8601 as it sent it: a diagnostic only, never parsed on read.
    sent_at: str | None
    clock_skew_ms: int | None  # sent_at minus server receive time
    ollama: dict[str, Any]  # reachable, version, latency_ms, error
    models_digest: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OllamaBecameUnavailable(ClientEvent):
    error: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OllamaBecameAvailable(ClientEvent):
    version: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelAdded(ClientEvent):
    name: str
    digest: str
    size: int
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    modified_at: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelChanged(ClientEvent):
    name: str
    digest: str
    size: int
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    modified_at: str | None = None
    previous_digest: str
    previous_size: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelRemoved(ClientEvent):
    name: str
    digest: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelLoaded(ClientEvent):
    name: str
    digest: str | None
    size: int
    size_vram: int
    expires_at: str | None = None
    context_length: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelUnloaded(ClientEvent):
    name: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelsReported(ClientEvent):
    """The first model report that changed nothing (an empty Ollama): from now on the server
    holds a report for this client. Reports that change models are recorded by their
    ModelAdded/ModelLoaded/... events instead."""

    models_digest: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientTimedOut(ClientEvent):
    DATETIME_FIELDS: ClassVar[tuple[str, ...]] = ("last_seen", "offline_since", "detected_at")
    last_seen: datetime
    offline_since: datetime
    detected_at: datetime
    timeout_s: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientRecovered(ClientEvent):
    DATETIME_FIELDS: ClassVar[tuple[str, ...]] = ("offline_since",)
    offline_since: datetime | None
    session_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientDeregistered(ClientEvent):
    session_id: str | None
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientDecommissioned(ClientEvent):
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientSecretRevoked(ClientEvent):
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChannelOpened(ClientEvent):
    """The agent opened its live channel (a WebSocket) to this server."""

    channel_id: str  # names the channel, so its ChannelClosed pairs with it
    session_id: str
    remote: str | None  # the peer's address as the server saw it


CHANNEL_CLOSE_REASONS = ("clean", "error", "replaced", "server_stopping", "idle")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChannelClosed(ClientEvent):
    channel_id: str
    reason: str  # one of CHANNEL_CLOSE_REASONS
    code: int | None = None  # the WebSocket close code, when there was one


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServerStarted(Event):
    DATETIME_FIELDS: ClassVar[tuple[str, ...]] = ("started_at", "unknown_since")
    server_id: str
    version: str
    started_at: datetime
    # When the previous run ended without ServerStopped, the last recorded event's time:
    # from there to started_at nothing was watching, so clients count as unknown.
    unknown_since: datetime | None
    previous_shutdown: str  # "first" | "clean" | "unclean"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServerStopped(Event):
    DATETIME_FIELDS: ClassVar[tuple[str, ...]] = ("stopped_at",)
    server_id: str
    stopped_at: datetime
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LogCompacted(Event):
    """Heartbeats no read model needs were moved from the live log into an archive segment.

    On the system stream; positions first..last are the segment's range (other events in it
    stay in the live log).
    """

    first_position: int
    last_position: int
    removed: int
    segment_id: str
    segment_sha256: str  # of the segment's uncompressed NDJSON bytes


# ---------------------------------------------------------------- alerts (stream alert-rule-<id>,
# firings on alert-<rule_id>-<client_id>)

ALERT_RULE_STREAM_PREFIX = "alert-rule-"
ALERT_STREAM_PREFIX = "alert-"


def alert_rule_stream(rule_id: str) -> str:
    return f"{ALERT_RULE_STREAM_PREFIX}{rule_id}"


def alert_stream(rule_id: str, client_id: str) -> str:
    # Rule ids are hex, so the first "-" after the prefix separates them from the client id.
    return f"{ALERT_STREAM_PREFIX}{rule_id}-{client_id}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertRuleWritten(Event):
    """What a created or changed rule says: the whole rule as it is now."""

    rule_id: str
    name: str
    scope: dict[str, Any]  # {client_ids: [...], labels: {k: v}}; empty = every client
    condition: dict[str, Any]  # {kind: status|model_missing|digest_drift, ...}
    notify: dict[str, Any]  # {urls: [Apprise URLs], webhooks: [{url, secret}]}
    send_resolved: bool = True
    remind_every_s: float | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertRuleCreated(AlertRuleWritten):
    pass


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertRuleChanged(AlertRuleWritten):
    """A PUT replaces every field."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertRuleDeleted(Event):
    rule_id: str


# Firings are not ClientEvents: they are about a client but not its own facts (the client
# projectors leave them alone). Their time is the envelope's recorded_at.


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertFired(Event):
    DATETIME_FIELDS: ClassVar[tuple[str, ...]] = ("since",)
    rule_id: str
    rule_name: str
    client_id: str
    hostname: str | None
    dedupe_key: str  # "<rule_id>/<client_id>/<firing>": one per (rule, client, firing)
    firing: int  # 1 for the pair's first firing, then 2, ...
    condition: str  # the rule's condition kind
    status: str  # the client's status when it fired
    detail: str
    since: datetime  # when the condition began to hold


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertReminded(Event):
    """Still firing after the rule's remind_every_s since the last notice."""

    rule_id: str
    client_id: str
    dedupe_key: str  # the firing's key
    status: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertResolved(Event):
    rule_id: str
    client_id: str
    dedupe_key: str  # the firing's key
    reason: str  # cleared | rule_deleted
    status: str
    notify: bool  # whether a resolve notice goes out (the rule's send_resolved)


NOTICE_STREAM_PREFIX = "notice-"


def notice_stream(rule_id: str, client_id: str) -> str:
    return f"{NOTICE_STREAM_PREFIX}{rule_id}-{client_id}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NotificationDelivered(Event):
    """One attempt to deliver a notice to one target succeeded (the receiver has it)."""

    notice_id: str  # the notice: its dedupe key (see docs/alerts.md)
    rule_id: str
    client_id: str
    target_id: str  # stable id of the target (a hash of its address, never the address)
    target: str  # what kind of target, credentials masked: "webhook https://host/…"
    attempt: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NotificationFailed(Event):
    DATETIME_FIELDS: ClassVar[tuple[str, ...]] = ("next_attempt_at",)
    notice_id: str
    rule_id: str
    client_id: str
    target_id: str
    target: str
    attempt: int
    error: str
    next_attempt_at: datetime | None  # None: given up (24 h of retries, or the target is gone)


# ---------------------------------------------------------------- fleet operations (stream
# operation-<id>): pull or delete one model on chosen hosts

OPERATION_STREAM_PREFIX = "operation-"


def operation_stream(operation_id: str) -> str:
    return f"{OPERATION_STREAM_PREFIX}{operation_id}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OperationRequested(Event):
    DATETIME_FIELDS: ClassVar[tuple[str, ...]] = ("expires_at",)
    operation_id: str
    action: str  # pull | delete
    model: str
    targets: list[str]  # client ids, resolved from the selector when requested
    selector: dict[str, Any]  # as asked: {client_ids: [...]} or {labels: {k: v}}
    max_parallel: int
    expires_at: datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OperationTargetStarted(Event):
    operation_id: str
    client_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OperationTargetProgressed(Event):
    operation_id: str
    client_id: str
    status: str | None  # the agent's phase, as Ollama's pull stream names it
    completed: int | None
    total: int | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OperationTargetSucceeded(Event):
    operation_id: str
    client_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OperationTargetFailed(Event):
    operation_id: str
    client_id: str
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OperationTargetCancelled(Event):
    operation_id: str
    client_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OperationTargetExpired(Event):
    operation_id: str
    client_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OperationFinished(Event):
    operation_id: str
    succeeded: int
    failed: int
    cancelled: int
    expired: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        OperationRequested,
        OperationTargetStarted,
        OperationTargetProgressed,
        OperationTargetSucceeded,
        OperationTargetFailed,
        OperationTargetCancelled,
        OperationTargetExpired,
        OperationFinished,
        ClientRegistered,
        ClientReregistered,
        HeartbeatReceived,
        OllamaBecameUnavailable,
        OllamaBecameAvailable,
        ModelAdded,
        ModelChanged,
        ModelRemoved,
        ModelLoaded,
        ModelUnloaded,
        ModelsReported,
        ClientTimedOut,
        ClientRecovered,
        ClientDeregistered,
        ClientDecommissioned,
        ClientSecretRevoked,
        ChannelOpened,
        ChannelClosed,
        ServerStarted,
        ServerStopped,
        LogCompacted,
        AlertRuleCreated,
        AlertRuleChanged,
        AlertRuleDeleted,
        AlertFired,
        AlertReminded,
        AlertResolved,
        NotificationDelivered,
        NotificationFailed,
    )
}

LATEST_SCHEMA_VERSIONS: dict[str, int] = {
    name: cls.SCHEMA_VERSION for name, cls in EVENT_TYPES.items()
}


def event_from_data(type_name: str, data: dict[str, Any]) -> Event:
    """Rebuild a domain event from stored (already upcast) data; KeyError for unknown types."""
    return EVENT_TYPES[type_name].from_data(data)
