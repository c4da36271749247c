"""One harness per adapter: opens stores on shared backing storage and reaches into it raw."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any, Protocol

from obt.store.codec import EventCodec
from obt.store.memory import MemoryStore
from obt.store.ports import Store


class Harness(Protocol):
    name: str
    durable: bool  # whether a second open() sees what the first stored
    scale: int  # how many events a heavy test may write (the Mongo stand-in is slow)

    async def open(self, codec: EventCodec | None = None) -> Store: ...

    async def corrupt(self, position: int) -> None:
        """Overwrite the stored payload of the event at `position` with garbage."""
        ...

    async def cleanup(self) -> None: ...


class MemoryHarness:
    name = "memory"
    durable = False
    scale = 2000

    def __init__(self) -> None:
        self._store: MemoryStore | None = None

    async def open(self, codec: EventCodec | None = None) -> Store:
        self._store = MemoryStore(codec)
        return self._store

    async def corrupt(self, position: int) -> None:
        assert self._store is not None
        self._store.corrupt(position, "{not json")

    async def cleanup(self) -> None:
        return None


class SQLiteHarness:
    name = "sqlite"
    durable = True
    scale = 2000

    def __init__(self, directory: Path) -> None:
        self.path = directory / "obt.sqlite3"

    async def open(self, codec: EventCodec | None = None) -> Store:
        from obt.store.sqlite import SQLiteStore

        store = SQLiteStore(self.path, codec or EventCodec())
        await store.open()
        return store

    async def corrupt(self, position: int) -> None:
        connection = sqlite3.connect(self.path)
        try:
            with connection:
                connection.execute(
                    "UPDATE events SET data = '{not json' WHERE position = ?", (position,)
                )
        finally:
            connection.close()

    async def cleanup(self) -> None:
        return None


class MongoHarness:
    name = "mongodb"
    durable = True

    def __init__(self, uri: str, scale: int) -> None:
        self.uri = uri
        self.scale = scale
        self.db_name = f"obt_test_{uuid.uuid4().hex[:12]}"
        self.clients: list[Any] = []  # raw connections tests opened, closed at cleanup

    async def open(self, codec: EventCodec | None = None) -> Store:
        from obt.store.mongodb import MongoStore

        store = MongoStore(self.uri, self.db_name, codec or EventCodec())
        await store.open()
        return store

    async def corrupt(self, position: int) -> None:
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(self.uri)
        try:
            await client[self.db_name].events.update_one(
                {"position": position}, {"$set": {"data": "{not json"}}
            )
        finally:
            await client.close()

    async def cleanup(self) -> None:
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(self.uri)
        try:
            await client.drop_database(self.db_name)
        finally:
            await client.close()
            for raw in self.clients:
                await raw.close()


# Reaching into each adapter's archive raw: what an attacker or a failing disk could do, for
# the tests that `obt archive verify` notices it.


async def archive_overwrite(harness: Harness, store: object, segment_id: str, body: bytes) -> None:
    """Replace a segment's stored bytes behind the archive's back."""
    from obt.store.archive import MemoryArchive
    from obt.store.archive_files import FileArchive

    archive = store.archive()  # type: ignore[attr-defined]
    if isinstance(archive, MemoryArchive):
        archive.bodies[segment_id] = body
    elif isinstance(archive, FileArchive):
        archive.segment_path(segment_id).write_bytes(body)
    else:
        await _mongo_archive(harness).update_one({"_id": segment_id}, {"$set": {"body": body}})


async def archive_drop(harness: Harness, store: object, segment_id: str) -> None:
    """Lose a segment's bytes (the manifest still names it)."""
    from obt.store.archive import MemoryArchive
    from obt.store.archive_files import FileArchive

    archive = store.archive()  # type: ignore[attr-defined]
    if isinstance(archive, MemoryArchive):
        del archive.bodies[segment_id]
    elif isinstance(archive, FileArchive):
        archive.segment_path(segment_id).unlink()
    else:
        await _mongo_archive(harness).update_one({"_id": segment_id}, {"$unset": {"body": ""}})


async def archive_swap_entries(harness: Harness, store: object, first: int, second: int) -> None:
    """Swap two manifest entries' places (0-based), as a careless edit or restore might."""
    from obt.store.archive import MemoryArchive
    from obt.store.archive_files import FileArchive

    archive = store.archive()  # type: ignore[attr-defined]
    entries = await archive.entries()
    entries[first], entries[second] = entries[second], entries[first]
    if isinstance(archive, MemoryArchive):
        archive.replace_entries(entries)
    elif isinstance(archive, FileArchive):
        from obt.store.codec import dumps

        text = "".join(dumps(e.to_doc()) + "\n" for e in entries)
        archive.manifest_path.write_text(text)
    else:
        collection = _mongo_archive(harness)
        a, b = entries[first], entries[second]
        await collection.update_one({"_id": a.segment_id}, {"$set": {"sequence": -1}})
        await collection.update_one({"_id": b.segment_id}, {"$set": {"sequence": a.sequence}})
        await collection.update_one({"_id": a.segment_id}, {"$set": {"sequence": b.sequence}})


def _mongo_archive(harness: Harness):  # type: ignore[no-untyped-def]
    from pymongo import AsyncMongoClient

    assert isinstance(harness, MongoHarness)
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(harness.uri)
    harness.clients.append(client)
    return client[harness.db_name].archive
