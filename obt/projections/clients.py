"""The `clients` read model: each client's current state, as the dashboard lists and shows it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from obt.domain.events import (
    ChannelClosed,
    ChannelOpened,
    ClientDeregistered,
    ClientEvent,
    ClientRegistered,
    ClientReregistered,
    HeartbeatReceived,
    ModelAdded,
    ModelChanged,
    ModelLoaded,
    ModelRemoved,
    ModelUnloaded,
    OllamaBecameUnavailable,
    ServerStarted,
    ServerStopped,
)
from obt.domain.liveness import Status
from obt.projections.base import HEARTBEAT, Batch, Envelope, Projector, iso, ts
from obt.projections.status import Liveness, client_transition, server_transitions
from obt.store.ports import Doc, ReadStore

ONLINE, DEGRADED = Status.ONLINE, Status.DEGRADED

CLIENTS = "clients"
META = "clients_meta"
RECENT_WINDOW = timedelta(hours=25)  # enough history in each document for uptime_24h
# A channel that ends like this, without a deregistration, shows as "connection lost".
LOST = ("error", "idle")


class ClientChanges:
    """Which clients changed since a reader last took them (see client_index.ClientIndex).

    `shaped`: a change beyond a heartbeat in the same status (status, registration, models);
    `any`: every change, heartbeats included; `reset`: the documents were reloaded.
    """

    def __init__(self) -> None:
        self.shaped: set[str] = set()
        self.any: set[str] = set()
        self.reset = True


def liveness_of(doc: Doc) -> Liveness:
    return Liveness(
        Status(doc["status"]),
        datetime.fromisoformat(doc["status_since"]),
        Status(doc["underlying"]),
    )


class ClientsProjector(Projector):
    name: ClassVar[str] = "clients"
    collections: ClassVar[tuple[str, ...]] = (CLIENTS, META)
    writes_behind: ClassVar[bool] = True  # ReadModels serves clients from `docs`

    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}
        self.live: dict[str, Liveness] = {}  # parsed once, not from the document per event
        self.revision = 0  # moves on every change to `docs`: lets readers cache what they built
        # Moves on every change but a heartbeat in the same status (hostnames, statuses,
        # models): for readers that do not show what heartbeats change.
        self.shape_revision = 0
        self._changed: dict[str, int] = {}  # client -> position of its last change, this batch
        self._unsaved: set[str] = set()  # clients whose document is newer than the stored one
        self._seen: dict[str, datetime] = {}  # client -> last heartbeat, formatted at flush
        self.observed_since: datetime | None = None
        self._watchers: list[ClientChanges] = []

    def watch(self) -> ClientChanges:
        """A feed of changed client ids for one reader that keeps its own index."""
        changes = ClientChanges()
        self._watchers.append(changes)
        return changes

    async def load(self, store: ReadStore) -> None:
        self.docs = {d["client_id"]: d for d in await store.find(CLIENTS)}
        self.live = {cid: liveness_of(d) for cid, d in self.docs.items() if "status" in d}
        self.revision += 1
        self.shape_revision += 1
        for watcher in self._watchers:
            watcher.reset = True
        self._changed.clear()
        self._unsaved.clear()
        self._seen.clear()
        meta = await store.get(META, "server")
        since = meta.get("observed_since") if meta else None
        self.observed_since = datetime.fromisoformat(since) if since else None

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT:
            # The common case first, from the raw data: one more heartbeat in the same
            # status. last_seen is formatted once per batch, in flush().
            data = envelope.data
            cid = data["client_id"]
            current = self.live.get(cid)
            doc = self.docs.get(cid)
            if current is not None and doc is not None:
                ollama = data["ollama"]
                status = ONLINE if ollama.get("reachable") else DEGRADED
                if current.status is status and current.underlying is status:
                    _fold_heartbeat(doc, data["session_id"], data.get("clock_skew_ms"), ollama)
                    if doc.get("transport") is None:
                        _use_http(doc, envelope.at)
                    self._seen[cid] = envelope.at
                    self._changed[cid] = envelope.position
                    self.revision += 1
                    return
        event, at, pos = envelope.event, envelope.at, envelope.position
        if isinstance(event, ServerStarted | ServerStopped):
            self._apply_server(event, pos, batch)
            return
        if not isinstance(event, ClientEvent):
            return
        cid = event.client_id
        doc = self.docs.get(cid)
        if doc is None:
            if not isinstance(event, ClientRegistered):
                return  # events of a client registered before this history began
            doc = self.docs[cid] = _new_doc(event, at)
        current = self.live.get(cid)
        moved = client_transition(current, event, at, self.observed_since)
        if moved is not None and moved != current:
            _set_liveness(doc, moved, at)
            self.live[cid] = moved
        seen = self._seen.pop(cid, None)
        if seen is not None:  # a heartbeat earlier in this batch: its last_seen stands
            doc["last_seen"] = iso(seen)
        _fold(doc, event, at)
        self._touch(cid, pos)

    def _touch(self, cid: str, pos: int) -> None:
        self._changed[cid] = pos
        self.revision += 1
        self.shape_revision += 1
        for watcher in self._watchers:
            watcher.shaped.add(cid)

    def flush(self, batch: Batch, *, persist: bool = True) -> None:
        for cid, pos in self._changed.items():
            doc = self.docs[cid]
            seen = self._seen.pop(cid, None)
            if seen is not None:
                doc["last_seen"] = iso(seen)
            doc["position"] = pos
            batch.changed("client", cid, pos)
        for watcher in self._watchers:
            watcher.any.update(self._changed)
        self._unsaved.update(self._changed)
        self._changed.clear()
        if persist:
            for cid in self._unsaved:
                batch.put(CLIENTS, cid, self.docs[cid], client_id=cid)
            self._unsaved.clear()

    def _apply_server(self, event: ServerStarted | ServerStopped, pos: int, batch: Batch) -> None:
        at = event.started_at if isinstance(event, ServerStarted) else event.stopped_at
        if isinstance(event, ServerStarted):
            self.observed_since = event.started_at
            batch.put(META, "server", {"observed_since": iso(at), "position": pos})
        for cid, doc in self.docs.items():
            current = self.live.get(cid)
            steps = server_transitions(current, event) if current is not None else []
            for step in steps:
                _set_liveness(doc, step, at)
                self.live[cid] = step
            # Channels end with the server that held them (after a crash, unrecorded).
            dropped = doc.get("transport") == "channel"
            if dropped:
                _end_channel(doc)
            if steps or dropped:
                self._touch(cid, pos)


def _new_doc(event: ClientRegistered, at: datetime) -> Doc:
    return {
        "client_id": event.client_id,
        "registered_at": iso(at),
        "last_seen": None,
        "models": {},
        "loaded": {},
        "recent": [],
        "clock_skew_ms": None,
        "session_id": None,
        "ollama": {"reachable": False, "version": None, "error": None, "latency_ms": None},
        **_NO_CONNECTION,
        "reconnects": [],  # when a session's channel opened again (timestamps, last 25 h)
        "last_disconnect": None,
    }


_NO_CONNECTION: Doc = {
    "transport": None,  # channel | http | None (not known to be talking)
    "connected_since": None,
    "connection_lost": False,
    "channel_id": None,
    "channel_session": None,
}


def _use_http(doc: Doc, at: datetime) -> None:
    """A heartbeat while no channel is open came over HTTP."""
    doc["transport"] = "http"
    doc["connected_since"] = iso(at)
    doc["connection_lost"] = False


def _end_channel(doc: Doc) -> None:
    doc["transport"] = None
    doc["connected_since"] = None
    doc["channel_id"] = None


def _fold_channel(doc: Doc, event: ChannelOpened | ChannelClosed, at: datetime) -> None:
    if isinstance(event, ChannelOpened):
        if doc.get("channel_session") == event.session_id:  # the same agent run, again
            horizon = ts(at - RECENT_WINDOW)
            doc["reconnects"] = [t for t in doc.get("reconnects", []) if t >= horizon]
            doc["reconnects"].append(ts(at))
        doc.update(
            transport="channel",
            connected_since=iso(at),
            connection_lost=False,
            channel_id=event.channel_id,
            channel_session=event.session_id,
        )
        return
    if event.channel_id != doc.get("channel_id"):
        return  # a channel already replaced or ended with its server
    _end_channel(doc)
    doc["last_disconnect"] = {"at": iso(at), "reason": event.reason}
    stopped = doc.get("status") in (Status.STOPPED.value, Status.DECOMMISSIONED.value)
    doc["connection_lost"] = event.reason in LOST and not stopped


def _set_liveness(doc: Doc, live: Liveness, at: datetime) -> None:
    recent: list[list[Any]] = doc["recent"]
    start = ts(live.since)
    if doc.get("status") != live.status.value:
        if recent and recent[-1][2] is None:
            recent[-1][2] = max(start, recent[-1][1])
        recent.append([live.status.value, start, None])
        horizon = ts(at - RECENT_WINDOW)
        doc["recent"] = [r for r in recent if r[2] is None or r[2] >= horizon]
    doc["status"] = live.status.value
    doc["status_since"] = iso(live.since)
    doc["underlying"] = live.underlying.value


def _fold_heartbeat(
    doc: Doc, session_id: str, clock_skew_ms: int | None, ollama: dict[str, Any]
) -> None:
    doc["session_id"] = session_id
    doc["clock_skew_ms"] = clock_skew_ms
    doc["ollama"] = {
        "reachable": bool(ollama.get("reachable")),
        "version": ollama.get("version") or doc["ollama"].get("version"),
        "error": ollama.get("error"),
        "latency_ms": ollama.get("latency_ms"),
    }


def _fold(doc: Doc, event: ClientEvent, at: datetime) -> None:
    match event:
        case ClientRegistered() | ClientReregistered():
            doc.update(
                hostname=event.hostname,
                platform=event.platform,
                agent_version=event.agent_version,
                labels=event.labels,
                session_id=event.session_id,
                last_seen=iso(at),
            )
            doc.update(_NO_CONNECTION)  # registrations come over HTTP; a channel follows
            _use_http(doc, at)
            doc["ollama"] = {
                "reachable": bool(event.ollama.get("reachable")),
                "version": event.ollama.get("version"),
                "error": doc["ollama"].get("error"),
                "latency_ms": doc["ollama"].get("latency_ms"),
            }
        case HeartbeatReceived():
            doc["last_seen"] = iso(at)
            _fold_heartbeat(doc, event.session_id, event.clock_skew_ms, event.ollama)
            if doc.get("transport") is None:
                _use_http(doc, at)
        case ChannelOpened() | ChannelClosed():
            _fold_channel(doc, event, at)
        case ClientDeregistered():
            doc["connection_lost"] = False
        case OllamaBecameUnavailable():
            doc["ollama"]["error"] = event.error
        case ModelAdded() | ModelChanged():
            doc["models"][event.name] = {
                "name": event.name,
                "digest": event.digest,
                "size": event.size,
                "family": event.family,
                "parameter_size": event.parameter_size,
                "quantization": event.quantization,
                "modified_at": event.modified_at,
            }
        case ModelRemoved():
            doc["models"].pop(event.name, None)
        case ModelLoaded():
            doc["loaded"][event.name] = {
                "name": event.name,
                "digest": event.digest,
                "size": event.size,
                "size_vram": event.size_vram,
                "expires_at": event.expires_at,
                "context_length": event.context_length,
            }
        case ModelUnloaded():
            doc["loaded"].pop(event.name, None)
        case _:
            pass
    doc["models_count"] = len(doc["models"])
    doc["loaded_count"] = len(doc["loaded"])
