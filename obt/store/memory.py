"""An in-memory Store with the same semantics as the real adapters, for unit tests.

Events are kept encoded, as the SQLite adapter keeps them, and every read decodes them through
the codec, so upcasters and corrupt-row handling behave as they do against a real store.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from obt.errors import CheckpointConflict, EventRemovalRefused
from obt.store.archive import MemoryArchive
from obt.store.codec import EventCodec, dumps, loads_object, to_timestamp
from obt.store.ports import AppendResult, Delete, Doc, NewEvent, ReadOp, RecordedEvent
from obt.store.rules import (
    EncodedEvent,
    StoredIdentity,
    apply_upsert,
    check_expected,
    duplicate_ids_in,
    indexed_fields,
    resend_version,
)


@dataclass(slots=True)
class _Row:
    position: int
    id: str
    stream: str
    version: int
    type: str
    schema_version: int
    data: str
    metadata: str
    recorded_at: float
    removed: bool = False  # compacted away: its position stays taken, never reused


@dataclass(slots=True)
class _DocRow:
    doc: str
    client_id: str | None
    sort: float | None


class MemoryStore:
    """Event log and read store in dictionaries; nothing survives `close()`'s caller."""

    backend = "memory"

    def __init__(self, codec: EventCodec | None = None) -> None:
        self._codec = codec or EventCodec()
        self._rows: list[_Row] = []  # index = position - 1; removed rows stay, marked
        self._by_id: dict[str, _Row] = {}
        self._streams: dict[str, list[_Row]] = {}  # live rows only, in version order
        self._docs: dict[str, dict[str, _DocRow]] = {}
        self._checkpoints: dict[str, int] = {}
        self._appended = asyncio.Condition()
        self._last_recorded_at = float("-inf")
        self._archive = MemoryArchive()

    # lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> float:
        started = time.perf_counter()
        await asyncio.sleep(0)
        return (time.perf_counter() - started) * 1000

    # event log -----------------------------------------------------------------------------

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        recorded_at: datetime,
    ) -> AppendResult:
        encoded = [EncodedEvent.of(event) for event in events]
        duplicate_ids_in(encoded)
        stored = {
            e.id: _identity(row) for e in encoded if (row := self._by_id.get(e.id)) is not None
        }
        version = resend_version(stream, encoded, stored)
        if version is not None:
            return AppendResult(stream, version, ())
        rows = self._streams.get(stream, [])
        current = rows[-1].version if rows else 0
        check_expected(stream, expected_version, current)
        if not encoded:
            return AppendResult(stream, current, ())
        # Positions and recorded_at move forward together, so position_at is a simple search.
        when = max(to_timestamp(recorded_at), self._last_recorded_at)
        self._last_recorded_at = when
        positions = []
        for i, event in enumerate(encoded, start=1):
            row = _Row(
                len(self._rows) + 1,
                event.id,
                stream,
                current + i,
                event.type,
                event.schema_version,
                event.data,
                event.metadata,
                when,
            )
            self._rows.append(row)
            rows.append(row)
            self._by_id[event.id] = row
            positions.append(row.position)
        self._streams[stream] = rows
        async with self._appended:
            self._appended.notify_all()
        return AppendResult(stream, current + len(encoded), tuple(positions))

    async def read_stream(
        self, stream: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        rows = self._streams.get(stream, [])
        rows = rows[bisect.bisect_right(rows, after_version, key=lambda row: row.version) :]
        if limit is not None:
            rows = rows[: max(limit, 0)]
        return [self._decode(row) for row in rows]

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
        end = len(self._rows) if until is None else min(until, len(self._rows))
        low = None if recorded_from is None else to_timestamp(recorded_from)
        high = None if recorded_to is None else to_timestamp(recorded_to)
        wanted = None if types is None else set(types)
        found: list[RecordedEvent] = []
        start, stop = max(after, 0), max(end, 0)
        # Indexes rather than a slice: a page from the head must not copy the whole log.
        indexes = range(stop - 1, start - 1, -1) if descending else range(start, stop)
        for index in indexes:
            if len(found) >= limit:
                break
            row = self._rows[index]
            if row.removed:
                continue
            if wanted is not None and row.type not in wanted:
                continue
            if stream is not None and row.stream != stream:
                continue
            if (low is not None and row.recorded_at < low) or (
                high is not None and row.recorded_at >= high
            ):
                continue
            found.append(self._decode(row))
        return found

    async def head(self) -> int:
        return len(self._rows)

    async def stream_version(self, stream: str) -> int:
        rows = self._streams.get(stream)
        return rows[-1].version if rows else 0

    async def position_at(self, when: datetime) -> int:
        moment = to_timestamp(when)
        index = bisect.bisect_right(self._rows, moment, key=lambda row: row.recorded_at)
        while index > 0 and self._rows[index - 1].removed:
            index -= 1
        return index

    async def remove_events(self, positions: Collection[int]) -> int:
        rows = [
            row
            for p in set(positions)
            if 0 < p <= len(self._rows) and not (row := self._rows[p - 1]).removed
        ]
        for row in rows:
            if row.position == len(self._rows) or self._streams[row.stream][-1] is row:
                raise EventRemovalRefused(
                    f"position {row.position} is the head or the last event of {row.stream}"
                )
        gone = {id(row) for row in rows}
        for stream in {row.stream for row in rows}:
            self._streams[stream] = [r for r in self._streams[stream] if id(r) not in gone]
        for row in rows:
            row.removed = True
            del self._by_id[row.id]
        return len(rows)

    def archive(self) -> MemoryArchive:
        return self._archive

    async def log_bytes(self) -> int:
        return sum(
            len(r.data) + len(r.metadata) + len(r.id) + len(r.stream) + len(r.type) + 24
            for r in self._rows
            if not r.removed
        )

    async def wait_for_append(self, after: int, timeout: float) -> int:  # noqa: ASYNC109
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._appended:
                await self._appended.wait_for(lambda: len(self._rows) > after)
        return len(self._rows)

    def _decode(self, row: _Row) -> RecordedEvent:
        return self._codec.decode(
            position=row.position,
            id=row.id,
            stream=row.stream,
            version=row.version,
            type=row.type,
            schema_version=row.schema_version,
            data=row.data,
            metadata=row.metadata,
            recorded_at=row.recorded_at,
        )

    def corrupt(self, position: int, data: str) -> None:
        """Overwrite a stored payload with raw text: lets tests exercise CorruptEvent."""
        self._rows[position - 1].data = data

    # read models ---------------------------------------------------------------------------

    async def checkpoint(self, projection: str) -> int:
        return self._checkpoints.get(projection, 0)

    async def commit(
        self,
        projection: str,
        *,
        expected_checkpoint: int,
        new_checkpoint: int,
        ops: Sequence[ReadOp],
    ) -> None:
        actual = self._checkpoints.get(projection, 0)
        if actual != expected_checkpoint:
            raise CheckpointConflict(projection, expected_checkpoint, actual)
        # Work on copies so a failing op (e.g. a value JSON cannot hold) applies nothing.
        changed: dict[str, dict[str, _DocRow]] = {}
        for op in ops:
            docs = changed.get(op.collection)
            if docs is None:
                docs = changed[op.collection] = dict(self._docs.get(op.collection, {}))
            if isinstance(op, Delete):
                docs.pop(op.key, None)
                continue
            row = docs.get(op.key)
            current = None if row is None else loads_object(row.doc)
            client_id, sort = indexed_fields(op, None if row is None else (row.client_id, row.sort))
            docs[op.key] = _DocRow(dumps(apply_upsert(current, op)), client_id, sort)
        self._docs.update(changed)
        self._checkpoints[projection] = new_checkpoint

    async def reset(self, projection: str, collections: Collection[str]) -> None:
        for collection in collections:
            self._docs.pop(collection, None)
        self._checkpoints[projection] = 0

    async def get(self, collection: str, key: str) -> Doc | None:
        row = self._docs.get(collection, {}).get(key)
        return None if row is None else loads_object(row.doc)

    async def find(
        self,
        collection: str,
        *,
        client_id: str | None = None,
        sort_gte: float | None = None,
        sort_lt: float | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Doc]:
        rows = [
            (key, row)
            for key, row in self._docs.get(collection, {}).items()
            if (client_id is None or row.client_id == client_id)
            and (sort_gte is None or (row.sort is not None and row.sort >= sort_gte))
            and (sort_lt is None or (row.sort is not None and row.sort < sort_lt))
        ]
        # Documents without a sort value come first, as NULLs do in SQLite and MongoDB.
        rows.sort(
            key=lambda item: (item[1].sort is not None, item[1].sort or 0.0, item[0]),
            reverse=descending,
        )
        if limit is not None:
            rows = rows[: max(limit, 0)]
        return [loads_object(row.doc) for _, row in rows]


def _identity(row: _Row) -> StoredIdentity:
    return StoredIdentity(
        row.stream, row.version, row.type, row.schema_version, row.data, row.metadata
    )
