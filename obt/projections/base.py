"""What every projector shares: the batch it writes into and the contract the runner drives."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from obt.domain.events import Event, event_from_data
from obt.store.ports import Delete, Doc, Increment, Put, ReadOp, ReadStore, RecordedEvent


@dataclass(frozen=True, slots=True)
class Change:
    """A read-model change worth telling live subscribers about."""

    kind: str  # client | model | timeline
    key: str
    position: int


HEARTBEAT = "HeartbeatReceived"


class Envelope:
    """A recorded event for all projectors, its domain event decoded once, when first asked.

    Heartbeats are most of the log and the projectors' fast paths read the few fields they
    need from `data`, so most heartbeats are never turned into HeartbeatReceived objects.
    """

    __slots__ = ("_event", "at", "data", "position", "recorded", "type")

    def __init__(self, recorded: RecordedEvent, event: Event | None = None) -> None:
        self.recorded = recorded
        self.position = recorded.position
        self.at = recorded.recorded_at
        self.type = recorded.type
        self.data = recorded.data
        self._event = event

    @property
    def event(self) -> Event:
        if self._event is None:
            self._event = event_from_data(self.type, self.data)
        return self._event

    @classmethod
    def of(cls, recorded: RecordedEvent, event: Event) -> Envelope:
        return cls(recorded, event)


@dataclass
class Batch:
    """The ops one projector produces for a run of events; the last Put of a key wins."""

    _puts: dict[tuple[str, str], Put] = field(default_factory=dict)
    _others: list[ReadOp] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def put(
        self,
        collection: str,
        key: str,
        doc: Doc,
        *,
        client_id: str | None = None,
        sort: float | None = None,
    ) -> None:
        self._puts[(collection, key)] = Put(collection, key, doc, client_id, sort)

    def delete(self, collection: str, key: str) -> None:
        self._puts.pop((collection, key), None)
        self._others.append(Delete(collection, key))

    def increment(
        self,
        collection: str,
        key: str,
        amounts: dict[str, float],
        base: Doc,
        *,
        client_id: str | None = None,
        sort: float | None = None,
    ) -> None:
        self._others.append(Increment(collection, key, amounts, base, client_id, sort))

    def changed(self, kind: str, key: str, position: int) -> None:
        self.changes.append(Change(kind, key, position))

    def ops(self) -> list[ReadOp]:
        # Deletes and increments first, then the final state of every put document: a key
        # deleted and re-created in one batch ends up present.
        return [*self._others, *self._puts.values()]

    def __bool__(self) -> bool:
        return bool(self._puts or self._others)


class Projector(ABC):
    """Folds events into read-model documents; keeps the documents it updates often in memory."""

    name: ClassVar[str]
    collections: ClassVar[tuple[str, ...]]
    #: True for a projector whose readers are served from its memory: the runner may then
    #: hold its document writes back for a while (see ProjectionRunner), so a client that
    #: heartbeats often costs one write per interval instead of one per heartbeat.
    writes_behind: ClassVar[bool] = False

    @abstractmethod
    async def load(self, store: ReadStore) -> None:
        """Load the in-memory state from the read store (after a start, reset or conflict)."""

    @abstractmethod
    def apply(self, envelope: Envelope, batch: Batch) -> None:
        """Fold one event into memory and record the document writes in `batch`."""

    def flush(self, batch: Batch, *, persist: bool = True) -> None:
        """Called once per batch of events, before any commit; for projectors that write lazily.

        `persist` is False only for a projector that `writes_behind`, when the runner holds
        its writes back: announce this batch's changes, keep the documents to write later.
        """
        return

    def apply_all(self, envelopes: Iterable[Envelope], batch: Batch) -> None:
        for envelope in envelopes:
            self.apply(envelope, batch)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ts(value: datetime) -> float:
    return value.timestamp()


def without_position(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "position"}
