"""One harness per adapter: opens stores on shared backing storage and reaches into it raw."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Protocol

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
