"""The `models` read model: fleet availability, per model name: which hosts hold which digest,
where it is loaded, and whether the hosts disagree (digest drift)."""

from __future__ import annotations

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


class ModelsProjector(Projector):
    name: ClassVar[str] = "models"
    collections: ClassVar[tuple[str, ...]] = (MODELS,)

    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}
        self.revision = 0  # moves on every change to `docs`

    async def load(self, store: ReadStore) -> None:
        self.docs = {d["name"]: d for d in await store.find(MODELS)}
        self.revision += 1

    def apply(self, envelope: Envelope, batch: Batch) -> None:
        if envelope.type == HEARTBEAT:
            return  # heartbeats change nothing here (and need no decoding)
        event, pos = envelope.event, envelope.position
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
                self._touch(event.name, pos, batch)
            case ModelRemoved():
                host = self._host(event.name, event.client_id)
                host["installed"] = False
                self._prune(event.name, event.client_id)
                self._touch(event.name, pos, batch)
            case ModelLoaded():
                host = self._host(event.name, event.client_id)
                host.update(
                    loaded=True,
                    size_vram=event.size_vram,
                    expires_at=event.expires_at,
                    loaded_digest=event.digest,
                )
                self._touch(event.name, pos, batch)
            case ModelUnloaded():
                host = self._host(event.name, event.client_id)
                host.update(loaded=False, size_vram=None, expires_at=None)
                self._prune(event.name, event.client_id)
                self._touch(event.name, pos, batch)
            case ClientDecommissioned():
                for name, doc in list(self.docs.items()):
                    if doc["hosts"].pop(event.client_id, None) is not None:
                        self._touch(name, pos, batch)
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
            batch.delete(MODELS, name)
        else:
            digests = {h["digest"] for h in doc["hosts"].values() if h.get("digest")}
            doc["digests"] = sorted(digests)
            doc["drift"] = len(digests) > 1
            doc["position"] = pos
            batch.put(MODELS, name, doc)
        batch.changed("model", name, pos)
