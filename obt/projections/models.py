"""The `models` read model: fleet availability, per model name: which hosts hold which digest,
where it is loaded, and whether the hosts disagree (digest drift)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from obt.domain.events import (
    ClientDecommissioned,
    ModelAdded,
    ModelChanged,
    ModelLoaded,
    ModelRemoved,
    ModelUnloaded,
)
from obt.projections.base import HEARTBEAT, Batch, Envelope, Projector
from obt.store.ports import Doc, ReadStore

MODELS = "models"
MODEL_EVENTS = (ModelAdded, ModelChanged, ModelRemoved, ModelLoaded, ModelUnloaded)


@dataclass
class ModelTally:
    """Counts over one model's hosts, kept per change: at 100,000 hosts, recounting them for
    every model event made a catch-up quadratic."""

    digests: Counter[str] = field(default_factory=Counter)
    installed: int = 0
    loaded: int = 0

    def add(self, host: Doc, sign: int) -> None:
        if host.get("digest"):
            self.digests[host["digest"]] += sign
            if self.digests[host["digest"]] <= 0:
                del self.digests[host["digest"]]
        self.installed += sign * bool(host.get("installed"))
        self.loaded += sign * bool(host.get("loaded"))


class ModelsProjector(Projector):
    name: ClassVar[str] = "models"
    collections: ClassVar[tuple[str, ...]] = (MODELS,)

    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}
        self.revision = 0  # moves on every change to `docs`
        self.tallies: dict[str, ModelTally] = {}

    async def load(self, store: ReadStore) -> None:
        self.docs = {d["name"]: d for d in await store.find(MODELS)}
        self.tallies = {}
        for name, doc in self.docs.items():
            tally = self.tallies[name] = ModelTally()
            for host in doc["hosts"].values():
                tally.add(host, 1)
        self.revision += 1

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT:
            return  # heartbeats change nothing here (and need no decoding)
        event = envelope.event
        if isinstance(event, ClientDecommissioned):
            for name, doc in list(self.docs.items()):
                host = doc["hosts"].pop(event.client_id, None)
                if host is not None:
                    self.tallies[name].add(host, -1)
                    self._touch(name, envelope.position, batch)
            return
        if not isinstance(event, MODEL_EVENTS):
            return
        model, client_id = event.name, event.client_id
        # The host's share of the counts comes out before the change and goes back after.
        before = self.docs.get(model, {}).get("hosts", {}).get(client_id)
        tally = self.tallies.setdefault(model, ModelTally())
        if before is not None:
            tally.add(before, -1)
        self._apply_model_event(envelope)
        after = self.docs.get(model, {}).get("hosts", {}).get(client_id)
        if after is not None:
            tally.add(after, 1)
        self._touch(model, envelope.position, batch)

    def _apply_model_event(self, envelope: Envelope) -> None:
        event = envelope.event
        match event:
            case ModelAdded() | ModelChanged():
                host = self._host(event.name, event.client_id)
                host.update(
                    digest=event.digest,
                    size=event.size,
                    family=event.family,
                    parameter_size=event.parameter_size,
                    quantization=event.quantization,
                    installed=True,
                )
            case ModelRemoved():
                host = self._host(event.name, event.client_id)
                host["installed"] = False
                self._prune(event.name, event.client_id)
            case ModelLoaded():
                host = self._host(event.name, event.client_id)
                host.update(
                    loaded=True,
                    size_vram=event.size_vram,
                    expires_at=event.expires_at,
                    loaded_digest=event.digest,
                )
            case ModelUnloaded():
                host = self._host(event.name, event.client_id)
                host.update(loaded=False, size_vram=None, expires_at=None)
                self._prune(event.name, event.client_id)
            case _:
                pass

    def _host(self, name: str, client_id: str) -> Doc:
        doc = self.docs.setdefault(name, {"name": name, "hosts": {}})
        return doc["hosts"].setdefault(  # type: ignore[no-any-return]
            client_id,
            {"installed": False, "loaded": False, "digest": None, "size": None},
        )

    def _prune(self, name: str, client_id: str) -> None:
        host = self.docs[name]["hosts"][client_id]
        if not host["installed"] and not host["loaded"]:
            del self.docs[name]["hosts"][client_id]

    def _touch(self, name: str, pos: int, batch: Batch) -> None:
        self.revision += 1
        doc = self.docs[name]
        if not doc["hosts"]:
            del self.docs[name]
            self.tallies.pop(name, None)
            batch.delete(MODELS, name)
        else:
            digests = self.tallies[name].digests
            doc["digests"] = sorted(digests)
            doc["drift"] = len(digests) > 1
            doc["position"] = pos
            batch.put(MODELS, name, doc)
        batch.changed("model", name, pos)
