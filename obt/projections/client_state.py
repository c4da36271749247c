"""Snapshots of the client aggregate, so a server start never reads whole streams."""

from __future__ import annotations

from typing import ClassVar

from obt.commands.repository import SNAPSHOT_COLLECTION
from obt.domain.client import ClientState, evolve, observe_heartbeat
from obt.domain.events import ClientEvent
from obt.projections.base import HEARTBEAT, Batch, Envelope, Projector
from obt.store.ports import ReadStore


class ClientStateProjector(Projector):
    name: ClassVar[str] = "client_state"
    collections: ClassVar[tuple[str, ...]] = (SNAPSHOT_COLLECTION,)
    # The repository warms its cache from `states`; stored snapshots only speed up a start
    # (it then reads each stream after its snapshot), so they may trail by a write interval.
    writes_behind: ClassVar[bool] = True

    def __init__(self) -> None:
        self.states: dict[str, ClientState] = {}
        self._dirty: dict[str, int] = {}

    async def load(self, store: ReadStore) -> None:
        self.states = {
            d["state"]["client_id"]: ClientState.from_snapshot(d["state"])
            for d in await store.find(SNAPSHOT_COLLECTION)
        }
        self._dirty.clear()

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT:
            data = envelope.data
            state = self.states.get(data["client_id"])
            if state is not None:
                observe_heartbeat(
                    state, data["seq"], bool(data["ollama"].get("reachable")), envelope.at
                )
                state.version = envelope.recorded.version
                self._dirty[state.client_id] = envelope.position
                return
        event = envelope.event
        if not isinstance(event, ClientEvent):
            return
        state = self.states.get(event.client_id)
        if state is None:
            state = self.states[event.client_id] = ClientState(client_id=event.client_id)
        evolve(state, event, envelope.at)
        state.version = envelope.recorded.version
        self._dirty[event.client_id] = envelope.position

    def flush(self, batch: Batch, *, persist: bool = True) -> None:
        # One snapshot per client per commit, taken at commit time, not one per event.
        if not persist:
            return
        for cid, position in self._dirty.items():
            doc = {"state": self.states[cid].to_snapshot(), "position": position}
            batch.put(SNAPSHOT_COLLECTION, cid, doc, client_id=cid)
        self._dirty.clear()
