"""Ports for the event log and the read-model store; the adapters live beside this module.

One adapter object implements both, because a projector's checkpoint must be written in the
same transaction as its read-model changes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    from obt.store.archive import Archive

# expected_version: None = any version; 0 = the stream must not exist; n = exactly n.
ANY: None = None
NO_STREAM = 0

Doc: TypeAlias = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended; the store gives it a version and a position."""

    id: str
    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    position: int
    id: str
    stream: str
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class AppendResult:
    stream: str
    version: int  # the stream's version after the append
    positions: tuple[int, ...]  # one per event, in order; empty for an idempotent re-send

    @property
    def last_position(self) -> int:
        return self.positions[-1] if self.positions else 0


@dataclass(frozen=True, slots=True)
class Put:
    """Create or replace a read-model document."""

    collection: str
    key: str
    doc: Doc
    client_id: str | None = None  # indexed: per-client queries
    sort: float | None = None  # indexed together with client_id: ranges and ordering


@dataclass(frozen=True, slots=True)
class Increment:
    """Add numbers to fields of a document, creating it from `base` when missing."""

    collection: str
    key: str
    amounts: Mapping[str, float]
    base: Doc
    client_id: str | None = None
    sort: float | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    collection: str
    key: str


ReadOp: TypeAlias = Put | Increment | Delete


class EventLog(Protocol):
    backend: str

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        recorded_at: datetime,
    ) -> AppendResult:
        """Append atomically; return once durable.

        Raises WrongExpectedVersion when the stream is not at `expected_version`, and
        DuplicateEventId when an id is already stored with another payload. Re-sending events
        whose ids and payloads are all stored already is a no-op (empty `positions`).
        """
        ...

    async def read_stream(
        self, stream: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]: ...

    async def read_all(
        self,
        *,
        after: int = 0,
        limit: int = 1000,
        types: Collection[str] | None = None,
        stream: str | None = None,
        until: int | None = None,
        recorded_from: datetime | None = None,
        recorded_to: datetime | None = None,
        descending: bool = False,
    ) -> list[RecordedEvent]:
        """Events with after < position (<= until), filtered, at most `limit` of them.

        Ascending: the lowest positions first. Descending: the `limit` highest positions,
        highest first (paging back from the head without reading the whole log).
        """
        ...

    async def head(self) -> int:
        """The highest position; 0 for an empty store."""
        ...

    async def stream_version(self, stream: str) -> int: ...

    async def position_at(self, when: datetime) -> int:
        """The highest position recorded at or before `when` (0 when none)."""
        ...

    # The port takes a plain timeout (ASYNC109) so callers need no asyncio.timeout of their own.
    async def wait_for_append(self, after: int, timeout: float) -> int:  # noqa: ASYNC109
        """Return the head once it passes `after`, or the current head after `timeout` s."""
        ...


class ReadStore(Protocol):
    async def checkpoint(self, projection: str) -> int: ...

    async def commit(
        self,
        projection: str,
        *,
        expected_checkpoint: int,
        new_checkpoint: int,
        ops: Sequence[ReadOp],
    ) -> None:
        """Apply `ops` and move the checkpoint in one transaction.

        Raises CheckpointConflict when the stored checkpoint is not `expected_checkpoint`.
        """
        ...

    async def reset(self, projection: str, collections: Collection[str]) -> None:
        """Delete every document of `collections` and set the checkpoint to 0, atomically."""
        ...

    async def get(self, collection: str, key: str) -> Doc | None: ...

    async def find(
        self,
        collection: str,
        *,
        client_id: str | None = None,
        sort_gte: float | None = None,
        sort_lt: float | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Doc]: ...


class Store(EventLog, ReadStore, Protocol):
    """Everything an adapter offers; what bootstrap wires."""

    async def open(self) -> None:
        """Connect, create the schema or indexes, check the server's capabilities."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> float:
        """Round-trip latency in milliseconds; raises StoreUnavailable."""
        ...


class CompactableStore(Store, Protocol):
    """A store whose log compaction may thin out (see obt/compaction.py and docs/store.md)."""

    async def remove_events(self, positions: Collection[int]) -> int:
        """Delete the events at `positions` in one transaction; return how many were there.

        Positions already gone are skipped, so a compaction interrupted half-way can be finished.
        Positions are never reused afterwards. Removing the head or the last event of a stream
        raises EventRemovalRefused and removes nothing: heads and stream versions never move back.
        """
        ...

    def archive(self) -> Archive:
        """Where this store's compaction puts the events it removes."""
        ...

    async def log_bytes(self) -> int:
        """What the live log takes in the store (events with their indexes), in bytes."""
        ...
