"""The MongoDB store (production): a replica set, so appends and checkpoints are transactions.

Appends are group-committed by one writer task (see mongodb_writer); reads go straight to the
collections. The server must support transactions, so `open()` refuses a standalone mongod.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, DeleteOne, IndexModel, ReplaceOne
from pymongo import timeout as operation_timeout
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError

from obt.errors import (
    CheckpointConflict,
    EventRemovalRefused,
    LeaseLost,
    StoreMisconfigured,
    StoreUnavailable,
)
from obt.store.archive_mongodb import MongoArchive
from obt.store.codec import EventCodec, to_timestamp
from obt.store.lease import current_fence
from obt.store.mongodb_instances import InstanceRegistry
from obt.store.mongodb_lease import MongoLease, check_fences
from obt.store.mongodb_writer import AppendJob, append_batch
from obt.store.ports import (
    AppendResult,
    Delete,
    Doc,
    Increment,
    NewEvent,
    ReadOp,
    RecordedEvent,
)
from obt.store.rules import EncodedEvent, apply_upsert, indexed_fields

REPLICA_SET_HELP = (
    "OBT needs MongoDB transactions, which only a replica set offers. A one-node replica set "
    "is enough: start mongod with `mongod --replSet rs0 --bind_ip localhost`, run "
    "`mongosh --eval 'rs.initiate()'` once, and connect with "
    "mongodb://localhost:27017/?replicaSet=rs0 (or use the mongodb service in compose.yaml)"
)
_MAX_BATCH = 1000
# How often a waiting tail re-reads the head, for appends made by other OBT instances.
# Several instances: each instance's live feed shows another's changes within a second, so
# an idle instance looks for them often (one indexed find_one on the counter document).
_FOREIGN_WRITE_POLL_S = 0.1
_STOP: Any = object()
# The driver retries a transaction that met a network error for up to 120 s; with the store
# gone, every append queued behind it would wait that long. Bounded, the callers get a 503
# (their retry with the same event ids is idempotent) and the next batch starts afresh.
TRANSACTION_TIMEOUT_S = 10.0


def hosts_of(uri: str) -> str:
    """The host list of a MongoDB URI, without credentials (safe to log and show)."""
    rest = uri.split("://", 1)[-1]
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    return authority.rsplit("@", 1)[-1]


class MongoStore:
    backend = "mongodb"

    def __init__(
        self,
        uri: str,
        db_name: str = "obt",
        codec: EventCodec | None = None,
        *,
        server_selection_timeout_ms: int = 5000,
        instance_name: str = "obt",
        instance_expire_s: float = 5.0,
    ) -> None:
        self._uri = uri
        self._hosts = hosts_of(uri)
        self._db_name = db_name
        self._codec = codec or EventCodec()
        self._timeout_ms = server_selection_timeout_ms
        self._client: AsyncMongoClient[dict[str, Any]] | None = None
        self._queue: asyncio.Queue[AppendJob] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._head = 0
        self._appended = asyncio.Condition()
        self.instance_name = instance_name
        self._instance_expire_s = instance_expire_s
        self._instances: InstanceRegistry | None = None
        self._instances_stop = asyncio.Event()
        self._instances_task: asyncio.Task[None] | None = None

    @property
    def _db(self) -> AsyncDatabase[dict[str, Any]]:
        if self._client is None:
            raise StoreUnavailable(f"MongoDB store at {self._hosts} is not open")
        return self._client[self._db_name]

    # lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            self._uri,
            serverSelectionTimeoutMS=self._timeout_ms,
            connectTimeoutMS=self._timeout_ms,
            # A server that accepts a request and never answers must not hang it forever.
            socketTimeoutMS=max(10_000, 2 * self._timeout_ms),
            tz_aware=True,
            appname=f"obt/{self.instance_name}",  # names this instance in the server's logs
        )
        try:
            hello = await client.admin.command("hello")
            if "setName" not in hello and hello.get("msg") != "isdbgrid":
                raise StoreMisconfigured(
                    f"MongoDB at {self._hosts} is a standalone server. {REPLICA_SET_HELP}"
                )
            self._client = client
            await self._create_indexes()
            self._head = await self.head()
            self._instances = InstanceRegistry(
                client[self._db_name], name=self.instance_name, expire_s=self._instance_expire_s
            )
            # Sweep once now: a restart right after a crash frees what the dead run held.
            await self._instances.sweep(await self._instances.renew())
        except PyMongoError as exc:
            self._client = None
            await client.close()
            raise self._unavailable(exc) from None
        except BaseException:
            self._client = None
            await client.close()
            raise
        loop = asyncio.get_running_loop()
        self._writer = loop.create_task(self._write_forever())
        self._instances_stop.clear()
        self._instances_task = loop.create_task(self._instances.run(self._instances_stop))

    async def _create_indexes(self) -> None:
        db = self._db
        await db.events.create_indexes(
            [
                IndexModel([("position", ASCENDING)], unique=True, name="position"),
                IndexModel(
                    [("stream", ASCENDING), ("version", ASCENDING)],
                    unique=True,
                    name="stream_version",
                ),
                IndexModel([("type", ASCENDING), ("position", ASCENDING)], name="type_position"),
                IndexModel(
                    [("recorded_at", ASCENDING), ("position", ASCENDING)], name="recorded_at"
                ),
            ]
        )
        await db.docs.create_indexes(
            [
                IndexModel(
                    [("collection", ASCENDING), ("key", ASCENDING)],
                    unique=True,
                    name="collection_key",
                ),
                IndexModel(
                    [("collection", ASCENDING), ("client_id", ASCENDING), ("sort", ASCENDING)],
                    name="collection_client_sort",
                ),
            ]
        )
        # Collections must exist before the first transaction writes to them on older servers.
        existing = set(await db.list_collection_names())
        for name in ("counters", "streams", "checkpoints", "instances", "leases"):
            if name not in existing:
                with contextlib.suppress(PyMongoError):  # another instance created it first
                    await db.create_collection(name)

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put_nowait(_STOP)
            await writer
        task, self._instances_task = self._instances_task, None
        if task is not None:
            self._instances_stop.set()
            await task
        instances, self._instances = self._instances, None
        if instances is not None:
            await instances.close()
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def ping(self) -> float:
        started = time.perf_counter()
        try:
            await self._db.command("ping")
        except PyMongoError as exc:
            raise self._unavailable(exc) from None
        return (time.perf_counter() - started) * 1000

    def _session(self) -> contextlib.AbstractAsyncContextManager[AsyncClientSession]:
        """A session named in this instance's record: if this process dies inside a
        transaction, the other instances kill the session and the locks it held go free."""
        if self._instances is None:
            raise StoreUnavailable(f"MongoDB store at {self._hosts} is not open")
        return self._instances.session()

    @property
    def instances(self) -> InstanceRegistry | None:
        return self._instances

    def _unavailable(self, exc: PyMongoError) -> StoreUnavailable:
        kind = "unreachable" if isinstance(exc, ConnectionFailure) else "failing"
        # Driver messages name hosts, never the password; the URI itself is not shown.
        return StoreUnavailable(f"MongoDB at {self._hosts} is {kind}: {exc}")

    # appends -------------------------------------------------------------------------------

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        recorded_at: datetime,
    ) -> AppendResult:
        if self._writer is None:
            raise StoreUnavailable(f"MongoDB store at {self._hosts} is not open")
        encoded = [EncodedEvent.of(event) for event in events]
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(
            AppendJob(
                future,
                stream,
                encoded,
                expected_version,
                to_timestamp(recorded_at),
                current_fence(),  # set by the job runner on the lease holder's job tasks
            )
        )
        return await future

    async def _write_forever(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            while not self._queue.empty() and len(jobs) < _MAX_BATCH:
                jobs.append(self._queue.get_nowait())
            stopping = any(job is _STOP for job in jobs)
            jobs = [job for job in jobs if job is not _STOP]
            if jobs:
                unreachable = await self._write(jobs)
                if unreachable is not None:
                    stopping = self._fail_queued(unreachable) or stopping
            if stopping:
                return

    def _fail_queued(self, error: StoreUnavailable) -> bool:
        """Fail every append queued while a batch waited on an unreachable store: each would
        wait out its own transaction timeout in turn. True when a stop was queued among them."""
        stopping = False
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is _STOP:
                stopping = True
            elif not job.future.done():
                job.future.set_exception(error)
        return stopping

    async def _write(self, jobs: list[AppendJob]) -> StoreUnavailable | None:
        """Write one batch; returns the error when the store could not be reached."""
        db = self._db

        async def transaction(session: AsyncClientSession) -> tuple[list[Any], int]:
            return await append_batch(db, session, jobs)

        unreachable: StoreUnavailable | None = None
        try:
            with operation_timeout(TRANSACTION_TIMEOUT_S):
                async with self._session() as session:
                    outcomes, head = await session.with_transaction(transaction)
        except PyMongoError as exc:
            error = self._unavailable(exc)
            if isinstance(exc, ConnectionFailure | ExecutionTimeout):
                unreachable = error
            outcomes, head = [(None, error) for _ in jobs], 0
        except Exception as exc:  # a bug must reach every waiting caller, not kill the writer
            outcomes, head = [(None, exc) for _ in jobs], 0
        for job, (result, error) in zip(jobs, outcomes, strict=True):
            if job.future.cancelled():
                continue
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)
        if head > self._head:
            self._head = head
            async with self._appended:
                self._appended.notify_all()
        return unreachable

    # event reads ---------------------------------------------------------------------------

    async def read_stream(
        self, stream: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        if limit is not None and limit <= 0:
            return []
        cursor = self._db.events.find({"stream": stream, "version": {"$gt": after_version}})
        cursor = cursor.sort("version", ASCENDING).limit(limit or 0)
        return await self._decode(cursor)

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
        if limit <= 0:
            return []
        position: dict[str, int] = {"$gt": after}
        if until is not None:
            position["$lte"] = until
        query: dict[str, Any] = {"position": position}
        if types is not None:
            query["type"] = {"$in": list(types)}
        if stream is not None:
            query["stream"] = stream
        recorded: dict[str, float] = {}
        if recorded_from is not None:
            recorded["$gte"] = to_timestamp(recorded_from)
        if recorded_to is not None:
            recorded["$lt"] = to_timestamp(recorded_to)
        if recorded:
            query["recorded_at"] = recorded
        if not descending:
            order = [("position", ASCENDING)]
        elif stream is not None:
            # Within one stream versions rise with positions: the stream_version index serves
            # this without sorting the stream's events in memory.
            order = [("version", DESCENDING)]
        else:
            order = [("position", DESCENDING)]  # the position index, or type_position per type
        cursor = self._db.events.find(query).sort(order).limit(limit)
        return await self._decode(cursor)

    async def _decode(self, cursor: Any) -> list[RecordedEvent]:
        try:
            docs = await cursor.to_list()
        except PyMongoError as exc:
            raise self._unavailable(exc) from None
        decode = self._codec.decode
        return [
            decode(
                position=d["position"],
                id=d["_id"],
                stream=d["stream"],
                version=d["version"],
                type=d["type"],
                schema_version=d["schema_version"],
                data=d["data"],
                metadata=d["metadata"],
                recorded_at=d["recorded_at"],
            )
            for d in docs
        ]

    async def head(self) -> int:
        doc = await self._find_one("counters", {"_id": "events"})
        return 0 if doc is None else int(doc["seq"])

    async def stream_version(self, stream: str) -> int:
        doc = await self._find_one("streams", {"_id": stream})
        return 0 if doc is None else int(doc["version"])

    async def position_at(self, when: datetime) -> int:
        doc = await self._find_one(
            "events",
            {"recorded_at": {"$lte": to_timestamp(when)}},
            sort=[("recorded_at", DESCENDING), ("position", DESCENDING)],
        )
        return 0 if doc is None else int(doc["position"])

    async def wait_for_append(self, after: int, timeout: float) -> int:  # noqa: ASYNC109
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

    async def remove_events(self, positions: Collection[int]) -> int:
        db = self._db
        wanted = sorted(set(positions))
        fence = current_fence()  # compaction runs as a job: only its lease holder removes

        async def transaction(session: AsyncClientSession) -> int:
            if fence is not None and await check_fences(db, session, {fence}):
                raise LeaseLost(f"the {fence.lease} lease has a newer holder")
            found = await db.events.find(
                {"position": {"$in": wanted}}, {"position": 1, "stream": 1, "version": 1},
                session=session,
            ).to_list()  # fmt: skip
            counter = await db.counters.find_one({"_id": "events"}, session=session)
            head = 0 if counter is None else int(counter["seq"])
            streams = {d["stream"] for d in found}
            lasts = {
                d["_id"]: d["version"]
                async for d in db.streams.find({"_id": {"$in": list(streams)}}, session=session)
            }
            for d in found:
                if d["position"] == head or d["version"] == lasts.get(d["stream"]):
                    raise EventRemovalRefused(
                        f"position {d['position']} is the head or the last event of {d['stream']}"
                    )
            if found:
                await db.events.delete_many(
                    {"position": {"$in": [d["position"] for d in found]}}, session=session
                )
            return len(found)

        try:
            with operation_timeout(TRANSACTION_TIMEOUT_S):
                async with self._session() as session:
                    removed: int = await session.with_transaction(transaction)
        except PyMongoError as exc:
            raise self._unavailable(exc) from None
        return removed

    def lease(self, holder: str, duration_s: float) -> MongoLease:
        """The jobs lease, one document every instance on this database shares."""
        return MongoLease(self._db, holder, duration_s)

    def archive(self) -> MongoArchive:
        """The `archive` collection beside `events`: every instance sees one archive."""
        return MongoArchive(self._db)

    async def log_bytes(self) -> int:
        try:
            stats = await self._db.command("collStats", "events")
        except PyMongoError as exc:
            raise self._unavailable(exc) from None
        return int(stats.get("storageSize", stats.get("size", 0))) + int(
            stats.get("totalIndexSize", 0)
        )

    async def _find_one(self, collection: str, query: Doc, **options: Any) -> Doc | None:
        try:
            return await self._db[collection].find_one(query, **options)
        except PyMongoError as exc:
            raise self._unavailable(exc) from None

    # read models ---------------------------------------------------------------------------

    async def checkpoint(self, projection: str) -> int:
        doc = await self._find_one("checkpoints", {"_id": projection})
        return 0 if doc is None else int(doc["position"])

    async def commit(
        self,
        projection: str,
        *,
        expected_checkpoint: int,
        new_checkpoint: int,
        ops: Sequence[ReadOp],
    ) -> None:
        db = self._db

        async def transaction(session: AsyncClientSession) -> None:
            found = await db.checkpoints.find_one({"_id": projection}, session=session)
            actual = 0 if found is None else int(found["position"])
            if actual != expected_checkpoint:
                raise CheckpointConflict(projection, expected_checkpoint, actual)
            # Only increments build on the stored document; puts and deletes replace it. One
            # `$in` per collection uses the (collection, key) index; a large `$or` does not.
            wanted: dict[str, set[str]] = {}
            for op in ops:
                if isinstance(op, Increment):
                    wanted.setdefault(op.collection, set()).add(op.key)
            state: dict[tuple[str, str], Doc | None] = {}
            for collection, names in wanted.items():
                query = {"collection": collection, "key": {"$in": sorted(names)}}
                async for doc in db.docs.find(query, session=session):
                    state[doc["collection"], doc["key"]] = doc
            for op in ops:
                address = (op.collection, op.key)
                current = state.get(address)
                if isinstance(op, Delete):
                    state[address] = None
                    continue
                fields = None if current is None else (current["client_id"], current["sort"])
                client_id, sort = indexed_fields(op, fields)
                body = apply_upsert(None if current is None else current["doc"], op)
                state[address] = {
                    "collection": op.collection,
                    "key": op.key,
                    "doc": body,
                    "client_id": client_id,
                    "sort": sort,
                }
            writes: list[Any] = [
                DeleteOne({"collection": c, "key": k})
                if doc is None
                else ReplaceOne({"collection": c, "key": k}, _without_id(doc), upsert=True)
                for (c, k), doc in state.items()
            ]
            if writes:
                await db.docs.bulk_write(writes, ordered=True, session=session)
            await db.checkpoints.update_one(
                {"_id": projection}, {"$set": {"position": new_checkpoint}}, upsert=True,
                session=session,
            )  # fmt: skip

        await self._transact(transaction)

    async def reset(self, projection: str, collections: Collection[str]) -> None:
        db = self._db
        names = list(collections)

        async def transaction(session: AsyncClientSession) -> None:
            await db.docs.delete_many({"collection": {"$in": names}}, session=session)
            await db.checkpoints.update_one(
                {"_id": projection}, {"$set": {"position": 0}}, upsert=True, session=session
            )

        await self._transact(transaction)

    async def _transact(self, transaction: Any) -> None:
        try:
            with operation_timeout(TRANSACTION_TIMEOUT_S):
                async with self._session() as session:
                    await session.with_transaction(transaction)
        except PyMongoError as exc:
            raise self._unavailable(exc) from None

    async def get(self, collection: str, key: str) -> Doc | None:
        found = await self._find_one("docs", {"collection": collection, "key": key})
        return None if found is None else dict(found["doc"])

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
        if limit is not None and limit <= 0:
            return []
        query: dict[str, Any] = {"collection": collection}
        if client_id is not None:
            query["client_id"] = client_id
        bounds: dict[str, float] = {}
        if sort_gte is not None:
            bounds["$gte"] = sort_gte
        if sort_lt is not None:
            bounds["$lt"] = sort_lt
        if bounds:
            query["sort"] = bounds
        direction = DESCENDING if descending else ASCENDING
        cursor = self._db.docs.find(query, {"doc": 1}).sort(
            [("sort", direction), ("key", direction)]
        )
        try:
            docs = await cursor.limit(limit or 0).to_list()
        except PyMongoError as exc:
            raise self._unavailable(exc) from None
        return [dict(d["doc"]) for d in docs]


def _without_id(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k != "_id"}
