"""The embedded SQLite store: one writer thread with group commit, readers on a thread pool.

WAL lets the readers run while the writer commits; positions are the events table's rowid.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from obt.errors import StoreUnavailable
from obt.store.archive_files import FileArchive
from obt.store.codec import EventCodec, loads_object, to_timestamp
from obt.store.ports import AppendResult, Doc, NewEvent, ReadOp, RecordedEvent
from obt.store.rules import EncodedEvent
from obt.store.sqlite_checkpointer import WAL_LIMIT_BYTES, Checkpointer
from obt.store.sqlite_schema import STREAM_VERSION, check_file, translate
from obt.store.sqlite_writer import (
    AppendJob,
    CommitJob,
    Job,
    RemoveJob,
    ResetJob,
    SQLiteWriter,
)

T = TypeVar("T")
_EVENT_COLUMNS = "position, id, stream, version, type, schema_version, data, metadata, recorded_at"
# How often a waiting tail re-reads the head, in case another process wrote the file.
_FOREIGN_WRITE_POLL_S = 1.0
# Most types a descending read asks for one by one (SQLite allows 500 compound terms).
_MAX_ARMS = 64


class SQLiteStore:
    """Event log and read models in one SQLite file (WAL).

    `synchronous="FULL"` (the default) syncs the WAL on every commit, so an append that
    returned survives power loss; "NORMAL" survives a process crash only (see docs/store.md).
    """

    backend = "sqlite"

    def __init__(
        self,
        path: str | Path,
        codec: EventCodec | None = None,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout_s: float = 5.0,
        readers: int = 2,
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
        checkpoint_every_s: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self._codec = codec or EventCodec()
        self._synchronous = synchronous
        self._busy_timeout_s = busy_timeout_s
        self._readers = readers
        self._wal_limit_bytes = wal_limit_bytes
        self._checkpoint_every_s = checkpoint_every_s
        self._writer: SQLiteWriter | None = None
        self._checkpointer: Checkpointer | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._connections: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all_connections: list[sqlite3.Connection] = []
        self._head = 0
        self._appended: asyncio.Condition | None = None
        self._pending: list[Job] = []

    # lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        check_file(self.path)
        loop = asyncio.get_running_loop()
        self._appended = asyncio.Condition()
        writer = SQLiteWriter(
            self.path,
            synchronous=self._synchronous,
            busy_timeout_s=self._busy_timeout_s,
            wal_limit_bytes=self._wal_limit_bytes,
            loop=loop,
            resolve=self._resolve,
        )
        await writer.start()
        self._writer = writer
        self._checkpointer = Checkpointer(
            self.path,
            self._synchronous,
            every_s=self._checkpoint_every_s,
            wal_limit_bytes=self._wal_limit_bytes,
        )
        self._checkpointer.start()
        self._pool = ThreadPoolExecutor(self._readers, thread_name_prefix="obt-sqlite-read")
        self._head = await self.head()

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            await asyncio.to_thread(checkpointer.stop)
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown)
        for connection in self._all_connections:
            connection.close()
        self._all_connections.clear()
        self._connections = queue.SimpleQueue()

    def describe(self) -> dict[str, object]:
        """Diagnostics for /health: the file and how group commit is doing."""
        stats = self._writer.stats.describe() if self._writer is not None else {}
        return {"path": str(self.path), "synchronous": self._synchronous, **stats}

    async def ping(self) -> float:
        started = time.perf_counter()
        await self._read(lambda c: c.execute("SELECT 1").fetchone())
        return (time.perf_counter() - started) * 1000

    # writes --------------------------------------------------------------------------------

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        recorded_at: datetime,
    ) -> AppendResult:
        encoded = [EncodedEvent.of(event) for event in events]
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._submit(
            AppendJob(future, stream, encoded, expected_version, to_timestamp(recorded_at))
        )
        return await future

    async def commit(
        self,
        projection: str,
        *,
        expected_checkpoint: int,
        new_checkpoint: int,
        ops: Sequence[ReadOp],
    ) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submit(CommitJob(future, projection, expected_checkpoint, new_checkpoint, ops))
        await future

    async def reset(self, projection: str, collections: Collection[str]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submit(ResetJob(future, projection, list(collections)))
        await future

    async def remove_events(self, positions: Collection[int]) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._submit(RemoveJob(future, sorted(set(positions))))
        return await future

    def archive(self) -> FileArchive:
        """The archive beside the database file: OBT_DATA_DIR/archive/."""
        return FileArchive(self.path.parent / "archive")

    async def log_bytes(self) -> int:
        # dbstat walks the pages of the events table and its indexes (no full read of rows).
        row = await self._read(
            lambda c: c.execute(
                "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE aggregate = TRUE AND name IN"
                " (SELECT name FROM sqlite_master WHERE tbl_name = 'events')"
            ).fetchone()
        )
        return int(row[0])

    def _submit(self, job: Job) -> None:
        if self._writer is None:
            raise StoreUnavailable(f"SQLite store {self.path} is not open")
        # Jobs submitted in one turn of the event loop reach the writer as one batch: appenders
        # woken together by the last commit then share the next commit (and its fsync).
        self._pending.append(job)
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        jobs, self._pending = self._pending, []
        if self._writer is not None and jobs:
            self._writer.submit(jobs)

    def _resolve(
        self, outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]], head: int
    ) -> None:
        """Runs on the event loop once per committed batch (call_soon_threadsafe)."""
        for future, result, error in outcomes:
            if future.cancelled():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        if head > self._head:
            self._head = head
            assert self._appended is not None
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        assert self._appended is not None
        async with self._appended:
            self._appended.notify_all()

    # event reads ---------------------------------------------------------------------------

    async def read_stream(
        self, stream: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream = ? AND version > ?"  # noqa: S608
            " ORDER BY version LIMIT ?"
        )
        params = (stream, after_version, -1 if limit is None else max(limit, 0))
        return await self._read(lambda c: self._decode_all(c.execute(sql, params)))

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
        sql, params = select_events(
            after=after,
            limit=limit,
            types=types,
            stream=stream,
            until=until,
            recorded_from=recorded_from,
            recorded_to=recorded_to,
            descending=descending,
        )
        return await self._read(lambda c: self._decode_all(c.execute(sql, params)))

    async def head(self) -> int:
        row = await self._read(lambda c: c.execute("SELECT max(position) FROM events").fetchone())
        return int(row[0] or 0)

    async def stream_version(self, stream: str) -> int:
        row = await self._read(lambda c: c.execute(STREAM_VERSION, (stream,)).fetchone())
        return int(row[0] or 0)

    async def position_at(self, when: datetime) -> int:
        # recorded_at never decreases along positions, so the index answers this directly.
        row = await self._read(
            lambda c: c.execute(
                "SELECT position FROM events WHERE recorded_at <= ?"
                " ORDER BY recorded_at DESC, position DESC LIMIT 1",
                (to_timestamp(when),),
            ).fetchone()
        )
        return 0 if row is None else int(row[0])

    async def wait_for_append(self, after: int, timeout: float) -> int:  # noqa: ASYNC109
        assert self._appended is not None
        deadline = time.monotonic() + timeout
        while self._head <= after:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, _FOREIGN_WRITE_POLL_S)), self._appended:
                    await self._appended.wait_for(lambda: self._head > after)
            if self._head <= after:
                self._head = max(self._head, await self.head())
        return self._head

    def _decode_all(self, rows: sqlite3.Cursor) -> list[RecordedEvent]:
        decode = self._codec.decode
        return [
            decode(
                position=r[0],
                id=r[1],
                stream=r[2],
                version=r[3],
                type=r[4],
                schema_version=r[5],
                data=r[6],
                metadata=r[7],
                recorded_at=r[8],
            )
            for r in rows
        ]

    # read-model reads ----------------------------------------------------------------------

    async def checkpoint(self, projection: str) -> int:
        row = await self._read(
            lambda c: c.execute(
                "SELECT position FROM checkpoints WHERE projection = ?", (projection,)
            ).fetchone()
        )
        return 0 if row is None else int(row[0])

    async def get(self, collection: str, key: str) -> Doc | None:
        row = await self._read(
            lambda c: c.execute(
                "SELECT doc FROM docs WHERE collection = ? AND key = ?", (collection, key)
            ).fetchone()
        )
        return None if row is None else loads_object(row[0])

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
        where = ["collection = ?"]
        params: list[Any] = [collection]
        for clause, value in (
            ("client_id = ?", client_id),
            ("sort >= ?", sort_gte),
            ("sort < ?", sort_lt),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        direction = "DESC" if descending else "ASC"
        params.append(-1 if limit is None else max(limit, 0))
        sql = (
            f"SELECT doc FROM docs WHERE {' AND '.join(where)}"  # noqa: S608
            f" ORDER BY sort {direction}, key {direction} LIMIT ?"
        )
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [loads_object(row[0]) for row in rows]

    # the reader pool -----------------------------------------------------------------------

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._pool is None:
            raise StoreUnavailable(f"SQLite store {self.path} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._on_reader, work)

    def _on_reader(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            connection = self._connections.get_nowait()
        except queue.Empty:
            connection = self._connect_reader()
        try:
            return work(connection)
        except sqlite3.Error as exc:
            raise translate(self.path, exc) from None
        finally:
            self._connections.put(connection)

    def _connect_reader(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                check_same_thread=False,
                timeout=self._busy_timeout_s,
            )
        except sqlite3.Error as exc:
            raise translate(self.path, exc) from None
        self._all_connections.append(connection)
        return connection


def select_events(
    *,
    after: int,
    limit: int,
    types: Collection[str] | None,
    stream: str | None,
    until: int | None,
    recorded_from: datetime | None,
    recorded_to: datetime | None,
    descending: bool,
) -> tuple[str, list[Any]]:
    """The SELECT behind `read_all`, with its parameters (tests check its query plans)."""
    where = ["position > ?"]
    params: list[Any] = [after]
    if until is not None:
        where.append("position <= ?")
        params.append(until)
    if stream is not None:
        where.append("stream = ?")
        params.append(stream)
    if recorded_from is not None:
        where.append("recorded_at >= ?")
        params.append(to_timestamp(recorded_from))
    if recorded_to is not None:
        where.append("recorded_at < ?")
        params.append(to_timestamp(recorded_to))
    names = None if types is None else list(dict.fromkeys(types))
    limit = max(limit, 0)
    if descending and stream is None and names is not None and 1 < len(names) <= _MAX_ARMS:
        return _newest_of_types(names, where, params, limit)
    if names is not None:
        where.append(f"type IN ({','.join('?' * len(names))})")
        params.extend(names)
    params.append(limit)
    if not descending:
        order = "position"
    elif stream is not None:
        # Within one stream versions rise with positions; the (stream, version) index then
        # walks only that stream's events instead of the whole log backwards. The unary plus
        # keeps the planner from taking a position range and sorting it instead.
        where = [f"+{term}" if term.startswith("position") else term for term in where]
        order = "version DESC"
    else:
        order = "position DESC"  # the rowid, or events_by_type (type, position) for one type
    sql = (
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)}"  # noqa: S608
        f" ORDER BY {order} LIMIT ?"
    )
    return sql, params


def _newest_of_types(
    names: list[str], where: list[str], params: list[Any], limit: int
) -> tuple[str, list[Any]]:
    """The newest `limit` events of several types: each type's newest from events_by_type, merged.

    `type IN (...)` with ORDER BY position DESC would collect every matching event of all the
    types and sort them; one index walk per type reads at most `limit` events of each.
    """
    arm = (
        f"SELECT * FROM (SELECT {_EVENT_COLUMNS} FROM events"  # noqa: S608
        f" WHERE type = ? AND {' AND '.join(where)} ORDER BY position DESC LIMIT ?)"
    )
    args: list[Any] = []
    for name in names:
        args.extend([name, *params, limit])
    args.append(limit)
    return " UNION ALL ".join([arm] * len(names)) + " ORDER BY position DESC LIMIT ?", args
