"""The client aggregate: `decide_*` turn a request into events, `evolve` folds events into state.

Both are pure. Time arrives as an argument (the server's receive time), never from a clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from obt.domain.digest import models_digest
from obt.domain.events import (
    ClientDecommissioned,
    ClientDeregistered,
    ClientEvent,
    ClientRecovered,
    ClientRegistered,
    ClientReregistered,
    ClientSecretRevoked,
    ClientTimedOut,
    Event,
    HeartbeatReceived,
    ModelAdded,
    ModelChanged,
    ModelLoaded,
    ModelRemoved,
    ModelsReported,
    ModelUnloaded,
    OllamaBecameAvailable,
    OllamaBecameUnavailable,
)
from obt.domain.liveness import WATCHED, LivenessPolicy, Status, reachable_status


class ClientRuleViolation(Exception):
    """A request the aggregate refuses; `code` is stable, the message is for humans."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class InstalledModel:
    name: str
    digest: str
    size: int
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    modified_at: str | None = None


@dataclass(frozen=True, slots=True)
class LoadedModel:
    name: str
    digest: str | None
    size: int
    size_vram: int
    expires_at: str | None = None
    context_length: int | None = None


@dataclass(slots=True)
class ClientState:
    client_id: str
    version: int = 0  # stream version this state reflects
    registered: bool = False
    status: Status | None = None
    session_id: str | None = None
    secret_sha256: str | None = None
    last_seen: datetime | None = None
    last_seq: int | None = None
    ollama_reachable: bool | None = None
    offline_since: datetime | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    installed: dict[str, InstalledModel] = field(default_factory=dict)
    loaded: dict[str, LoadedModel] = field(default_factory=dict)
    models_reported: bool = False  # whether the server holds any model report

    # Computed on first use after a model change; every heartbeat compares against it.
    digest_cache: str | None = field(default=None, compare=False, repr=False)

    @property
    def models_digest(self) -> str:
        if self.digest_cache is None:
            self.digest_cache = models_digest(
                ((m.name, m.digest) for m in self.installed.values()),
                ((m.name, m.size_vram) for m in self.loaded.values()),
            )
        return self.digest_cache

    def copy(self) -> ClientState:
        """An independent state: containers copied, their immutable contents shared."""
        return dataclasses.replace(
            self,
            profile=dict(self.profile),
            installed=dict(self.installed),
            loaded=dict(self.loaded),
        )

    def to_snapshot(self) -> dict[str, Any]:
        # Written by hand: dataclasses.asdict deep-copies, and this runs for every client
        # that changed in a projection batch.
        return {
            "client_id": self.client_id,
            "version": self.version,
            "registered": self.registered,
            "status": self.status.value if self.status else None,
            "session_id": self.session_id,
            "secret_sha256": self.secret_sha256,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "last_seq": self.last_seq,
            "ollama_reachable": self.ollama_reachable,
            "offline_since": self.offline_since.isoformat() if self.offline_since else None,
            "profile": self.profile,
            "installed": {name: _model_dict(m) for name, m in self.installed.items()},
            "loaded": {name: _model_dict(m) for name, m in self.loaded.items()},
            "models_reported": self.models_reported,
        }

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> ClientState:
        data = dict(snap)
        data["status"] = Status(data["status"]) if data.get("status") else None
        for key in ("last_seen", "offline_since"):
            data[key] = datetime.fromisoformat(data[key]) if data.get(key) else None
        data["installed"] = {k: InstalledModel(**v) for k, v in data["installed"].items()}
        data["loaded"] = {k: LoadedModel(**v) for k, v in data["loaded"].items()}
        return cls(**data)


def _model_dict(model: InstalledModel | LoadedModel) -> dict[str, Any]:
    return {name: getattr(model, name) for name in model.__slots__}


# ---------------------------------------------------------------- decisions


def decide_register(
    state: ClientState,
    *,
    hostname: str,
    platform: dict[str, str],
    agent_version: str,
    labels: dict[str, str],
    ollama: dict[str, Any],
    session_id: str,
    new_secret_sha256: str | None,
) -> list[Event]:
    """Register a new client, or re-register a known one (agent restart, lost state).

    `new_secret_sha256` is set when the caller authenticated with the enrollment token and a
    fresh secret is to be issued; None when it used the client's own secret.
    """
    cid = state.client_id
    profile: dict[str, Any] = {
        "hostname": hostname,
        "platform": platform,
        "agent_version": agent_version,
        "labels": labels,
        "ollama": ollama,
    }
    if not state.registered:
        if new_secret_sha256 is None:
            raise ClientRuleViolation(
                "not_registered", "a new client must use the enrollment token"
            )
        return [
            ClientRegistered(
                client_id=cid, session_id=session_id, secret_sha256=new_secret_sha256, **profile
            )
        ]
    if state.status is Status.DECOMMISSIONED:
        raise ClientRuleViolation(
            "client_decommissioned",
            f"client {cid!r} was decommissioned by an admin; choose another client id",
        )
    same = (
        session_id == state.session_id
        and new_secret_sha256 is None
        and profile == state.profile
        and state.status in WATCHED
    )
    if same:
        return []  # a retried registration: nothing new happened
    events: list[Event] = [
        ClientReregistered(
            client_id=cid,
            session_id=session_id,
            previous_session_id=state.session_id,
            secret_sha256=new_secret_sha256,
            **profile,
        )
    ]
    if state.status is Status.OFFLINE:
        events.append(
            ClientRecovered(client_id=cid, offline_since=state.offline_since, session_id=session_id)
        )
    return events


def decide_heartbeat(
    state: ClientState,
    *,
    seq: int,
    session_id: str,
    sent_at: datetime | None,
    ollama: dict[str, Any],
    models_digest: str | None,
    now: datetime,
) -> list[Event]:
    require_current_session(state, session_id)
    if state.last_seq is not None and seq <= state.last_seq:
        if seq == state.last_seq:
            return []  # a replayed heartbeat is acknowledged once
        raise ClientRuleViolation(
            "stale_seq", f"seq {seq} is older than the last one received ({state.last_seq})"
        )
    cid = state.client_id
    skew = round((sent_at - now).total_seconds() * 1000) if sent_at else None
    reachable = bool(ollama.get("reachable"))
    events: list[Event] = [
        HeartbeatReceived(
            client_id=cid,
            seq=seq,
            session_id=session_id,
            sent_at=sent_at.isoformat() if sent_at else None,
            clock_skew_ms=skew,
            ollama=dict(ollama),
            models_digest=models_digest,
        )
    ]
    if state.status is Status.OFFLINE:
        events.append(
            ClientRecovered(client_id=cid, offline_since=state.offline_since, session_id=session_id)
        )
    if state.ollama_reachable is not None and reachable != state.ollama_reachable:
        if reachable:
            events.append(OllamaBecameAvailable(client_id=cid, version=ollama.get("version")))
        else:
            events.append(OllamaBecameUnavailable(client_id=cid, error=ollama.get("error")))
    return events


def decide_report_models(
    state: ClientState,
    *,
    installed: Sequence[InstalledModel],
    loaded: Sequence[LoadedModel],
) -> list[Event]:
    _require_active(state)
    cid = state.client_id
    events: list[Event] = []
    new_installed = {m.name: m for m in installed}
    for name, old in sorted(state.installed.items()):
        if name not in new_installed:
            events.append(ModelRemoved(client_id=cid, name=name, digest=old.digest))
    for name, m in sorted(new_installed.items()):
        old_m = state.installed.get(name)
        fields = dataclasses.asdict(m)
        if old_m is None:
            events.append(ModelAdded(client_id=cid, **fields))
        elif (old_m.digest, old_m.size) != (m.digest, m.size):
            events.append(
                ModelChanged(
                    client_id=cid, previous_digest=old_m.digest, previous_size=old_m.size, **fields
                )
            )
    new_loaded = {m.name: m for m in loaded}
    for name in sorted(state.loaded):
        if name not in new_loaded:
            events.append(ModelUnloaded(client_id=cid, name=name))
    for name, lm in sorted(new_loaded.items()):
        old_l = state.loaded.get(name)
        # expires_at moves with every request; only a (re)load with other sizes is news.
        if old_l is None or (old_l.digest, old_l.size, old_l.size_vram) != (
            lm.digest,
            lm.size,
            lm.size_vram,
        ):
            events.append(ModelLoaded(client_id=cid, **dataclasses.asdict(lm)))
    if not events and not state.models_reported:
        events.append(ModelsReported(client_id=cid, models_digest=state.models_digest))
    return events


def models_wanted(state: ClientState, heartbeat_digest: str | None) -> bool:
    """Whether the agent should send its models: the server holds no report, or another set."""
    return (
        heartbeat_digest is None
        or not state.models_reported
        or heartbeat_digest != state.models_digest
    )


def decide_deregister(state: ClientState, *, session_id: str | None, reason: str) -> list[Event]:
    _require_active(state)
    if state.status is Status.STOPPED:
        return []
    return [ClientDeregistered(client_id=state.client_id, session_id=session_id, reason=reason)]


def decide_decommission(state: ClientState, *, reason: str) -> list[Event]:
    if not state.registered:
        raise ClientRuleViolation("unknown_client", f"no client {state.client_id!r} is registered")
    if state.status is Status.DECOMMISSIONED:
        return []
    return [ClientDecommissioned(client_id=state.client_id, reason=reason)]


def decide_revoke_secret(state: ClientState, *, reason: str) -> list[Event]:
    if not state.registered:
        raise ClientRuleViolation("unknown_client", f"no client {state.client_id!r} is registered")
    if state.secret_sha256 is None:
        return []
    return [ClientSecretRevoked(client_id=state.client_id, reason=reason)]


def decide_timeout(
    state: ClientState,
    *,
    now: datetime,
    policy: LivenessPolicy,
    server_started_at: datetime | None,
) -> list[Event]:
    if state.status not in WATCHED or state.last_seen is None:
        return []
    if now <= policy.deadline(state.last_seen, server_started_at):
        return []
    return [
        ClientTimedOut(
            client_id=state.client_id,
            last_seen=state.last_seen,
            offline_since=policy.offline_since(state.last_seen),
            detected_at=now,
            timeout_s=policy.timeout_s,
        )
    ]


def require_current_session(state: ClientState, session_id: str) -> None:
    """What the agent of the registered session may do (heartbeat, open its channel)."""
    _require_active(state)
    if session_id != state.session_id:
        raise ClientRuleViolation(
            "session_mismatch",
            "this session is not the registered one; the agent must register again",
        )
    if state.status is Status.STOPPED:
        # A heartbeat still in flight when its agent deregistered must not revive the client;
        # a restarted agent registers a new session first.
        raise ClientRuleViolation(
            "client_stopped", "this session deregistered; the agent must register again"
        )


def _require_active(state: ClientState) -> None:
    if not state.registered:
        raise ClientRuleViolation("unknown_client", f"no client {state.client_id!r} is registered")
    if state.status is Status.DECOMMISSIONED:
        raise ClientRuleViolation(
            "client_decommissioned", f"client {state.client_id!r} was decommissioned by an admin"
        )


# ---------------------------------------------------------------- evolution


def evolve(state: ClientState, event: Event, at: datetime) -> ClientState:
    """Apply one event (recorded at `at`) to the state, in place, and return it."""
    if not isinstance(event, ClientEvent):
        return state
    match event:
        case HeartbeatReceived():  # first: by far the most frequent
            observe_heartbeat(state, event.seq, bool(event.ollama.get("reachable")), at)
        case ClientRegistered() | ClientReregistered():
            state.registered = True
            state.session_id = event.session_id
            if event.secret_sha256 is not None:
                state.secret_sha256 = event.secret_sha256
            state.profile = {
                "hostname": event.hostname,
                "platform": event.platform,
                "agent_version": event.agent_version,
                "labels": event.labels,
                "ollama": event.ollama,
            }
            state.ollama_reachable = bool(event.ollama.get("reachable"))
            state.status = reachable_status(state.ollama_reachable)
            state.last_seen = at
            state.last_seq = None
            state.offline_since = None
        case ClientRecovered():
            state.offline_since = None
        case ClientTimedOut():
            state.status = Status.OFFLINE
            state.offline_since = event.offline_since
        case ClientDeregistered():
            state.status = Status.STOPPED
        case ClientDecommissioned():
            state.status = Status.DECOMMISSIONED
            state.secret_sha256 = None
        case ClientSecretRevoked():
            state.secret_sha256 = None
        case ModelsReported():
            state.models_reported = True
        case ModelAdded() | ModelChanged():
            state.models_reported = True
            state.digest_cache = None
            state.installed[event.name] = InstalledModel(
                name=event.name,
                digest=event.digest,
                size=event.size,
                family=event.family,
                parameter_size=event.parameter_size,
                quantization=event.quantization,
                modified_at=event.modified_at,
            )
        case ModelRemoved():
            state.models_reported = True
            state.digest_cache = None
            state.installed.pop(event.name, None)
        case ModelLoaded():
            state.models_reported = True
            state.digest_cache = None
            state.loaded[event.name] = LoadedModel(
                name=event.name,
                digest=event.digest,
                size=event.size,
                size_vram=event.size_vram,
                expires_at=event.expires_at,
                context_length=event.context_length,
            )
        case ModelUnloaded():
            state.models_reported = True
            state.digest_cache = None
            state.loaded.pop(event.name, None)
        case _:
            pass
    return state


def observe_heartbeat(state: ClientState, seq: int, reachable: bool, at: datetime) -> None:
    """A heartbeat's whole effect on the state (projections apply it without the event)."""
    state.last_seen = at
    state.last_seq = seq
    state.ollama_reachable = reachable
    state.status = reachable_status(reachable)


def fold(client_id: str, history: Iterable[tuple[Event, datetime]]) -> ClientState:
    state = ClientState(client_id=client_id)
    for event, at in history:
        evolve(state, event, at)
        state.version += 1
    return state
