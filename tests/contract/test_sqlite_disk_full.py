"""SQLite on a full disk: appends fail with a clear, retryable error naming the file, nothing
stored is lost or corrupted, and writing (and the next open) works once there is room again.

The disk is "full" by SQLite's own page limit (PRAGMA max_page_count on the writer's
connection), so this runs anywhere; tests/integration/test_reliability_disk.py fills a real
(tmpfs) file system under a running server.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from obt.errors import StoreUnavailable
from obt.store.ports import NewEvent
from obt.store.sqlite import SQLiteStore

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def event(n: int, size: int = 100) -> NewEvent:
    return NewEvent(id=f"ev-{n}", type="HeartbeatReceived", data={"seq": n, "pad": "x" * size})


def writer_connection(store: SQLiteStore) -> sqlite3.Connection:
    connection = store._writer._connection if store._writer else None
    assert connection is not None
    return connection


async def test_a_full_disk_refuses_appends_clearly_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "obt.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    acknowledged = []
    try:
        for n in range(1, 21):
            await store.append("client-a", [event(n)], expected_version=n - 1, recorded_at=T0)
            acknowledged.append(n)
        pages = writer_connection(store).execute("PRAGMA page_count").fetchone()[0]
        writer_connection(store).execute(f"PRAGMA max_page_count = {pages}")
        refused: StoreUnavailable | None = None
        for n in range(21, 200):  # the first that needs a new page fails
            try:
                await store.append(
                    "client-a", [event(n, 20_000)], expected_version=n - 1, recorded_at=T0
                )
            except StoreUnavailable as exc:
                refused = exc
                break
            acknowledged.append(n)
        assert refused is not None, "no append was refused on a full database"
        assert "disk is full" in str(refused)
        assert str(path) in str(refused)
        stored = await store.read_stream("client-a")
        assert [e.data["seq"] for e in stored] == acknowledged

        # Room again: the same store writes on, no restart needed.
        writer_connection(store).execute("PRAGMA max_page_count = 1073741823")
        n = acknowledged[-1] + 1
        await store.append("client-a", [event(n)], expected_version=n - 1, recorded_at=T0)
        acknowledged.append(n)
    finally:
        await store.close()

    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        check.close()
    reopened = SQLiteStore(path)
    await reopened.open()
    try:
        assert [e.data["seq"] for e in await reopened.read_stream("client-a")] == acknowledged
        await reopened.append(
            "client-a", [event(999)], expected_version=len(acknowledged), recorded_at=T0
        )
    finally:
        await reopened.close()
