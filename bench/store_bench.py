"""Event-store throughput: raw sqlite3 (the floor), SQLiteStore and MongoStore under 32 appenders.

Run: python -m bench.store_bench [full|normal ...]   (default: both SQLite modes, in that order;
prints figures; writes nothing outside a temp directory)
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from obt.bootstrap import tune_gc
from obt.store.codec import dumps
from obt.store.ports import NewEvent, Store

APPENDERS = 32


def heartbeat_data(seq: int) -> dict[str, object]:
    """About 300 bytes of JSON, like a real heartbeat."""
    return {
        "seq": seq,
        "session_id": "5f0c8a9e-6d3b-4e21-9a57-0c1d2e3f4a5b",
        "sent_at": "2026-11-27T12:00:00.123456+00:00",
        "ollama": {"reachable": True, "version": "0.13.1", "latency_ms": 3.2, "error": None},
        "models_digest": "9f2b" * 16,
    }


def raw_sqlite(directory: Path, n: int) -> tuple[float, float]:
    path = directory / "raw.sqlite3"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, id TEXT, data TEXT)")
    payload = dumps(heartbeat_data(1))
    started = time.perf_counter()
    for i in range(n):
        connection.execute("INSERT INTO events (id, data) VALUES (?, ?)", (str(i), payload))
    single = n / (time.perf_counter() - started)
    rows = [(f"b{i}", payload) for i in range(n * 10)]
    started = time.perf_counter()
    for chunk in range(0, len(rows), 1000):
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO events (id, data) VALUES (?, ?)", rows[chunk : chunk + 1000]
        )
        connection.execute("COMMIT")
    batched = len(rows) / (time.perf_counter() - started)
    connection.close()
    return single, batched


async def concurrent_appends(store: Store, per_appender: int) -> float:
    now = datetime.now(UTC)

    async def appender(n: int) -> None:
        stream = f"client-{n}"
        for seq in range(per_appender):
            event = NewEvent(str(uuid.uuid4()), "HeartbeatReceived", heartbeat_data(seq))
            await store.append(stream, [event], expected_version=seq, recorded_at=now)

    started = time.perf_counter()
    await asyncio.gather(*(appender(n) for n in range(APPENDERS)))
    elapsed = time.perf_counter() - started
    assert await store.head() == APPENDERS * per_appender
    return APPENDERS * per_appender / elapsed


async def sqlite_store(directory: Path, per_appender: int, synchronous: str) -> float:
    from obt.store.sqlite import SQLiteStore

    store = SQLiteStore(directory / f"obt-{synchronous}.sqlite3", synchronous=synchronous)  # type: ignore[arg-type]
    await store.open()
    try:
        return await concurrent_appends(store, per_appender)
    finally:
        await store.close()


async def mongo_store(per_appender: int) -> float | None:
    try:
        import secantus
    except ImportError:
        return None
    from obt.store.mongodb import MongoStore

    server = secantus.SecantusDBServer(host="127.0.0.1", port=0, storage_path=":memory:")
    server.start()
    try:
        store = MongoStore(f"{server.uri}?retryWrites=false", "obt_bench")
        await store.open()
        try:
            return await concurrent_appends(store, per_appender)
        finally:
            await store.close()
    finally:
        server.stop()


async def main() -> None:
    tune_gc()  # the server runs with this collector tuning (obt.bootstrap)
    n = int(os.environ.get("OBT_BENCH_N", "20000"))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        single, batched = raw_sqlite(directory, n)
        print(
            f"raw sqlite3 (WAL, synchronous=FULL): {single:,.0f} single inserts/s, "
            f"{batched:,.0f} batched inserts/s (1000 per transaction)"
        )
        modes = [m.upper() for m in sys.argv[1:]] or ["FULL", "NORMAL"]
        for synchronous in modes:
            # Each measurement starts with the earlier ones' dirty pages on disk: otherwise
            # the kernel writes them back during the next run and charges it for them.
            os.sync()
            rate = await sqlite_store(directory, n * 5 // APPENDERS, synchronous)
            print(
                f"SQLiteStore synchronous={synchronous}, {APPENDERS} concurrent appenders, "
                f"1 event/append: {rate:,.0f} events/s = {rate / single:.1f}x raw single, "
                f"{rate / batched:.2f}x raw batched"
            )
    rate_mongo = await mongo_store(int(os.environ.get("OBT_BENCH_MONGO_PER_APPENDER", "60")))
    if rate_mongo is None:
        print("MongoStore: skipped (secantusdb is not installed)")
    else:
        print(
            f"MongoStore on in-process secantusdb, {APPENDERS} concurrent appenders, "
            f"1 event/append: {rate_mongo:,.0f} events/s (the stand-in tops out near 1k writes/s)"
        )


if __name__ == "__main__":
    asyncio.run(main())
