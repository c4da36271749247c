"""The one thread that writes the SQLite file: it drains queued jobs and group-commits them.

Every append or read-model commit queued while a transaction is running goes into the next
transaction, one SAVEPOINT per job so a conflict fails only its caller; callers' futures are
resolved together, and only after COMMIT returned.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from obt.errors import CheckpointConflict, DuplicateEventId, EventRemovalRefused
from obt.store.codec import dumps, loads_object
from obt.store.ports import AppendResult, Delete, Put, ReadOp
from obt.store.rules import (
    EncodedEvent,
    StoredIdentity,
    apply_upsert,
    check_expected,
    duplicate_ids_in,
    indexed_fields,
    resend_version,
)
from obt.store.sqlite_schema import (
    STREAM_VERSION,
    create_schema,
    is_new,
    translate,
    upgrade_schema,
)

Resolve = Callable[[list[tuple["asyncio.Future[Any]", Any, BaseException | None]], int], None]


@dataclass(slots=True)
class AppendJob:
    future: asyncio.Future[Any]
    stream: str
    events: list[EncodedEvent]
    expected_version: int | None
    recorded_at: float


@dataclass(slots=True)
class CommitJob:
    future: asyncio.Future[Any]
    projection: str
    expected_checkpoint: int
    new_checkpoint: int
    ops: Sequence[ReadOp]


@dataclass(slots=True)
class ResetJob:
    future: asyncio.Future[Any]
    projection: str
    collections: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RemoveJob:
    """Compaction: delete events by position (never the head, never a stream's last)."""

    future: asyncio.Future[Any]
    positions: list[int]


Job = AppendJob | CommitJob | ResetJob | RemoveJob
_STOP = object()

_INSERT_EVENT = (
    "INSERT INTO events (position, id, stream, version, type, schema_version, data, metadata,"
    " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_DOC = (
    "INSERT OR REPLACE INTO docs (collection, key, doc, client_id, sort) VALUES (?,?,?,?,?)"
)
_REMOVE_CHUNK = 500  # SQLite allows 999 bound parameters in older builds
_UPSERT_CHECKPOINT = "INSERT OR REPLACE INTO checkpoints (projection, position) VALUES (?, ?)"


@dataclass(slots=True)
class WriterStats:
    """How well group commit is doing: transactions, jobs in them, time spent writing."""

    transactions: int = 0
    jobs: int = 0
    busy_s: float = 0.0

    def record(self, jobs: int, seconds: float) -> None:
        self.transactions += 1
        self.jobs += jobs
        self.busy_s += seconds

    def describe(self) -> dict[str, float]:
        per = self.jobs / self.transactions if self.transactions else 0.0
        return {
            "transactions": self.transactions,
            "jobs_per_transaction": round(per, 2),
            "busy_s": round(self.busy_s, 3),
        }


class SQLiteWriter:
    """Owns the write connection; `submit` is safe from any thread."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str,
        busy_timeout_s: float,
        wal_limit_bytes: int,
        loop: asyncio.AbstractEventLoop,
        resolve: Resolve,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._busy_timeout_s = busy_timeout_s
        self._wal_limit_bytes = wal_limit_bytes
        self._loop = loop
        self._resolve = resolve
        self._queue: queue.SimpleQueue[list[Job] | object] = queue.SimpleQueue()
        self._ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._run, name="obt-sqlite-writer", daemon=True)
        self._connection: sqlite3.Connection | None = None
        self.stats = WriterStats()
        self._versions: dict[str, int] = {}  # stream -> version, valid while data_version holds
        self._head: tuple[int, float] | None = None  # (position, recorded_at), likewise
        self._data_version: int | None = None

    async def start(self) -> None:
        self._thread.start()
        await self._ready

    def submit(self, jobs: list[Job]) -> None:
        self._queue.put(jobs)

    async def stop(self) -> None:
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    # the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            connection = self._connect()
        except BaseException as exc:
            self._loop.call_soon_threadsafe(_fail, self._ready, exc)
            return
        self._loop.call_soon_threadsafe(_succeed, self._ready)
        try:
            while True:
                jobs: list[Job] = []
                item = self._queue.get()
                stopping = item is _STOP
                if not stopping:
                    jobs.extend(cast("list[Job]", item))
                    while True:
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if item is _STOP:
                            stopping = True
                            break
                        jobs.extend(cast("list[Job]", item))
                if jobs:
                    started = time.perf_counter()
                    self._write(connection, jobs)
                    self.stats.record(len(jobs), time.perf_counter() - started)
                if stopping:
                    return
        finally:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout_s
        )
        try:
            new = is_new(connection, self._path)
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"journal_mode stayed {mode}, WAL is needed")
            connection.execute(f"PRAGMA synchronous = {self._synchronous}")
            # Checkpoints run on their own thread (sqlite_checkpointer): inside a commit they
            # would hold up every append queued behind it.
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            # When a commit starts the WAL over, a WAL grown past the limit is cut back to it.
            connection.execute(f"PRAGMA journal_size_limit = {int(self._wal_limit_bytes)}")
            if new:
                create_schema(connection)
            else:
                upgrade_schema(connection)
        except sqlite3.Error as exc:
            connection.close()
            raise translate(self._path, exc) from None
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _write(self, connection: sqlite3.Connection, jobs: list[Job]) -> None:
        all_jobs = jobs
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        head = 0
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                self._check_versions_cache(connection)
                head, last_at = self._head_now(connection)
                appends = [job for job in jobs if isinstance(job, AppendJob)]
                fast = self._append_fast(connection, appends, head, last_at) if appends else None
                if fast is not None:
                    outcomes, head, last_at = fast
                    jobs = [job for job in jobs if not isinstance(job, AppendJob)]
                elif appends:
                    # The database refused a row: drop what the batch wrote, start again on
                    # the careful path (a savepoint around the fast path costs every batch).
                    connection.execute("ROLLBACK")
                    self._versions.clear()
                    self._head = None
                    connection.execute("BEGIN IMMEDIATE")
                    head, last_at = self._head_now(connection)
                for job in jobs:
                    connection.execute("SAVEPOINT job")
                    result: Any
                    try:
                        if isinstance(job, AppendJob):
                            self._versions.pop(job.stream, None)
                            result = self._append(connection, job, head, last_at)
                            if result.positions:
                                head = result.positions[-1]
                                last_at = max(last_at, job.recorded_at)
                        elif isinstance(job, CommitJob):
                            result = self._commit(connection, job)
                        elif isinstance(job, RemoveJob):
                            result = self._remove(connection, job, head)
                        else:
                            result = self._reset(connection, job)
                    except sqlite3.OperationalError:
                        raise  # locked, full, read-only: the whole transaction is lost
                    except Exception as exc:
                        connection.execute("ROLLBACK TO job")
                        connection.execute("RELEASE job")
                        outcomes.append((job.future, None, exc))
                    else:
                        connection.execute("RELEASE job")
                        outcomes.append((job.future, result, None))
                connection.execute("COMMIT")
                self._head = (head, last_at)
            except BaseException:
                self._versions.clear()
                self._head = None
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            error = translate(self._path, exc)
            outcomes = [(job.future, None, error) for job in all_jobs]
            head = 0
        self._loop.call_soon_threadsafe(self._resolve, outcomes, head)

    def _check_versions_cache(self, connection: sqlite3.Connection) -> None:
        # data_version changes when another connection (another process) commits: then the
        # cached stream versions may be stale. Our own commits leave it unchanged.
        version = connection.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._versions.clear()
            self._head = None
            self._data_version = version

    def _head_now(self, connection: sqlite3.Connection) -> tuple[int, float]:
        """The last position and its time: cached after our own commits, else read."""
        if self._head is None:
            row = connection.execute(
                "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1"
            ).fetchone()
            self._head = (0, float("-inf")) if row is None else (row[0], row[1])
        return self._head

    def _stream_version(self, connection: sqlite3.Connection, stream: str) -> int:
        version = self._versions.get(stream)
        if version is None:
            version = int(connection.execute(STREAM_VERSION, (stream,)).fetchone()[0] or 0)
        return version

    def _append_fast(
        self, connection: sqlite3.Connection, jobs: list[AppendJob], head: int, last_at: float
    ) -> tuple[list[tuple[asyncio.Future[Any], Any, BaseException | None]], int, float] | None:
        """Every append of the batch checked in Python and written with one executemany.

        Returns None when the database refuses the rows, e.g. an id already stored: the caller
        then rolls back and takes the careful path, one SAVEPOINT per append.
        """
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        rows: list[tuple[Any, ...]] = []
        versions: dict[str, int] = {}
        for job in jobs:
            version = versions.get(job.stream)
            if version is None:
                version = self._stream_version(connection, job.stream)
            try:
                duplicate_ids_in(job.events)
                check_expected(job.stream, job.expected_version, version)
            except Exception as exc:
                try:
                    resent = self._resent(connection, job) if job.events else None
                except DuplicateEventId as duplicate:
                    # A reused id with another payload: that job's answer, not the writer's end.
                    outcomes.append((job.future, None, duplicate))
                    continue
                if resent is not None:
                    outcomes.append((job.future, AppendResult(job.stream, resent, ()), None))
                else:
                    outcomes.append((job.future, None, exc))
                continue
            if not job.events:
                outcomes.append((job.future, AppendResult(job.stream, version, ()), None))
                continue
            when = max(job.recorded_at, last_at)  # positions and times move forward together
            rows.extend(_event_rows(job, head, version, when))
            count = len(job.events)
            positions = tuple(range(head + 1, head + count + 1))
            head += count
            last_at = when
            versions[job.stream] = version + count
            outcomes.append(
                (job.future, AppendResult(job.stream, version + count, positions), None)
            )
        try:
            connection.executemany(_INSERT_EVENT, rows)
        except sqlite3.IntegrityError:
            return None  # the caller rolls the transaction back
        self._versions.update(versions)
        return outcomes, head, last_at

    def _append(
        self, connection: sqlite3.Connection, job: AppendJob, head: int, last_at: float
    ) -> AppendResult:
        duplicate_ids_in(job.events)
        version = self._stream_version(connection, job.stream)  # the cache was dropped: read
        try:
            check_expected(job.stream, job.expected_version, version)
            if not job.events:
                return AppendResult(job.stream, version, ())
            when = max(job.recorded_at, last_at)  # positions and times move forward together
            connection.executemany(_INSERT_EVENT, _event_rows(job, head, version, when))
        except Exception as exc:
            # A re-send is recognised only once the ids turn out to be stored (rare): the
            # common path pays for no lookup by id.
            resent = self._resent(connection, job)
            if resent is not None:
                return AppendResult(job.stream, resent, ())
            if isinstance(exc, sqlite3.IntegrityError):
                raise DuplicateEventId(job.events[0].id) from None
            raise
        count = len(job.events)
        return AppendResult(job.stream, version + count, tuple(range(head + 1, head + count + 1)))

    @staticmethod
    def _resent(connection: sqlite3.Connection, job: AppendJob) -> int | None:
        ids = [e.id for e in job.events]
        sql = (
            "SELECT id, stream, version, type, schema_version, data, metadata FROM events"  # noqa: S608
            f" WHERE id IN ({','.join('?' * len(ids))})"  # placeholders only
        )
        stored = {row[0]: StoredIdentity(*row[1:]) for row in connection.execute(sql, ids)}
        return resend_version(job.stream, job.events, stored)

    @staticmethod
    def _commit(connection: sqlite3.Connection, job: CommitJob) -> None:
        row = connection.execute(
            "SELECT position FROM checkpoints WHERE projection = ?", (job.projection,)
        ).fetchone()
        actual = 0 if row is None else row[0]
        if actual != job.expected_checkpoint:
            raise CheckpointConflict(job.projection, job.expected_checkpoint, actual)
        puts: list[tuple[str, str, str, str | None, float | None]] = []
        for op in job.ops:
            if isinstance(op, Put):
                # A Put needs nothing from the stored row: serialise once, write in bulk.
                puts.append((op.collection, op.key, dumps(op.doc), op.client_id, op.sort))
                continue
            if puts:  # keep the order of ops on one key
                connection.executemany(_UPSERT_DOC, puts)
                puts.clear()
            if isinstance(op, Delete):
                connection.execute(
                    "DELETE FROM docs WHERE collection = ? AND key = ?", (op.collection, op.key)
                )
                continue
            found = connection.execute(
                "SELECT doc, client_id, sort FROM docs WHERE collection = ? AND key = ?",
                (op.collection, op.key),
            ).fetchone()
            current = None if found is None else loads_object(found[0])
            client_id, sort = indexed_fields(op, None if found is None else (found[1], found[2]))
            doc = dumps(apply_upsert(current, op))
            connection.execute(_UPSERT_DOC, (op.collection, op.key, doc, client_id, sort))
        if puts:
            connection.executemany(_UPSERT_DOC, puts)
        connection.execute(_UPSERT_CHECKPOINT, (job.projection, job.new_checkpoint))

    @staticmethod
    def _remove(connection: sqlite3.Connection, job: RemoveJob, head: int) -> int:
        removed = 0
        lasts: dict[str, int] = {}
        for start in range(0, len(job.positions), _REMOVE_CHUNK):
            chunk = job.positions[start : start + _REMOVE_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = connection.execute(
                f"SELECT position, stream, version FROM events WHERE position IN ({marks})",  # noqa: S608
                chunk,
            ).fetchall()
            for position, stream, version in rows:
                # Positions and stream versions must never move back: the rowid of the head
                # would be handed out again, and a stream's version is its highest row.
                last = lasts.get(stream)
                if last is None:
                    last = lasts[stream] = connection.execute(STREAM_VERSION, (stream,)).fetchone()[
                        0
                    ]
                if position == head or version == last:
                    raise EventRemovalRefused(
                        f"position {position} is the head or the last event of {stream}"
                    )
            connection.execute(f"DELETE FROM events WHERE position IN ({marks})", chunk)  # noqa: S608
            removed += len(rows)
        return removed

    @staticmethod
    def _reset(connection: sqlite3.Connection, job: ResetJob) -> None:
        connection.executemany(
            "DELETE FROM docs WHERE collection = ?", [(c,) for c in job.collections]
        )
        connection.execute(_UPSERT_CHECKPOINT, (job.projection, 0))


def _event_rows(job: AppendJob, head: int, version: int, when: float) -> list[tuple[Any, ...]]:
    """The events table's rows for an append placed after `head`, at stream `version`."""
    return [
        (
            head + i,
            e.id,
            job.stream,
            version + i,
            e.type,
            e.schema_version,
            e.data,
            e.metadata,
            when,
        )
        for i, e in enumerate(job.events, start=1)
    ]


def _succeed(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
