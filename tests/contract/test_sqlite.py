"""SQLite-only behaviour: files OBT must refuse or cannot write, locks, and the on-disk mode."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from obt.errors import StoreMisconfigured, StoreUnavailable, WrongExpectedVersion
from obt.store.ports import NewEvent
from obt.store.sqlite import SQLiteStore
from obt.store.sqlite_schema import translate

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def heartbeat(n: int) -> NewEvent:
    return NewEvent(id=f"hb-{n}", type="HeartbeatReceived", data={"seq": n})


async def make_obt_file(path: Path) -> None:
    store = SQLiteStore(path)
    await store.open()
    await store.append("client-a", [heartbeat(1)], expected_version=0, recorded_at=T0)
    await store.close()


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make `path` unwritable, also for root (which ignores permission bits)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
        pytest.skip("running as root without chattr +i: cannot make a file read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


async def test_a_new_file_is_created_in_wal_mode_with_the_obt_schema(tmp_path: Path) -> None:
    path = tmp_path / "obt.sqlite3"
    await make_obt_file(path)
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 2
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
        assert {"events", "docs", "checkpoints"} <= tables
        assert "streams" not in tables
    finally:
        connection.close()


async def test_a_version_1_file_is_upgraded_and_its_streams_continue(tmp_path: Path) -> None:
    """Schema 1 kept each stream's version in a `streams` table as well; schema 2 reads it
    from the events. An upgraded file drops the table and keeps every event."""
    path = tmp_path / "obt.sqlite3"
    await make_obt_file(path)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute(
            "CREATE TABLE streams (stream TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID"
        )
        connection.execute("INSERT INTO streams VALUES ('client-a', 1)")
        connection.execute("PRAGMA user_version = 1")
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.stream_version("client-a") == 1
        assert await store.stream_version("client-b") == 0
        await store.append("client-a", [heartbeat(2)], expected_version=1, recorded_at=T0)
        with pytest.raises(WrongExpectedVersion):
            await store.append("client-a", [heartbeat(3)], expected_version=1, recorded_at=T0)
        assert [e.version for e in await store.read_stream("client-a")] == [1, 2]
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 2
        names = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
        assert "streams" not in names


async def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "obt.sqlite3"
    path.write_text("my notes, not a database\n")
    before = snapshot(tmp_path)
    with pytest.raises(StoreMisconfigured, match="not an OBT database") as refused:
        await SQLiteStore(path).open()
    assert str(path) in str(refused.value)
    assert snapshot(tmp_path) == before


async def test_another_applications_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "obt.sqlite3"
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    connection.close()
    before = snapshot(tmp_path)
    with pytest.raises(StoreMisconfigured, match=r"not OBT's.*invoices"):
        await SQLiteStore(path).open()
    assert snapshot(tmp_path) == before


async def test_a_read_only_file_is_refused_with_a_clear_error_and_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "obt.sqlite3"
    await make_obt_file(path)
    before = snapshot(tmp_path)
    with read_only(path):
        with pytest.raises(StoreMisconfigured, match="read-only") as refused:
            await SQLiteStore(path).open()
        assert str(path) in str(refused.value)
    assert snapshot(tmp_path) == before


async def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured, match="does not exist"):
        await SQLiteStore(tmp_path / "nowhere" / "obt.sqlite3").open()


async def test_a_locked_database_makes_appends_unavailable_until_released(
    tmp_path: Path,
) -> None:
    path = tmp_path / "obt.sqlite3"
    store = SQLiteStore(path, busy_timeout_s=0.1)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match="locked") as locked:
            await store.append("client-a", [heartbeat(1)], expected_version=0, recorded_at=T0)
        assert str(path) in str(locked.value)
        other.execute("ROLLBACK")
        result = await store.append("client-a", [heartbeat(1)], expected_version=0, recorded_at=T0)
        assert result.positions == (1,)
    finally:
        other.close()
        await store.close()


@pytest.mark.parametrize(
    ("message", "error", "cause"),
    [
        ("database or disk is full", StoreUnavailable, "disk is full"),
        ("attempt to write a readonly database", StoreMisconfigured, "read-only"),
        ("database is locked", StoreUnavailable, "locked"),
        ("unable to open database file", StoreMisconfigured, "cannot open"),
    ],
)
def test_sqlite_errors_become_store_errors_naming_the_file_and_cause(
    message: str, error: type[Exception], cause: str
) -> None:
    translated = translate(Path("/data/obt.sqlite3"), sqlite3.OperationalError(message))
    assert type(translated) is error
    assert "/data/obt.sqlite3" in str(translated)
    assert cause in str(translated)


async def test_the_wal_stays_bounded_under_appends_that_never_pause(tmp_path: Path) -> None:
    """A PASSIVE checkpoint never completes while commits keep coming, so SQLite never starts
    the WAL over: without a RESTART past the limit, these appends grow it to ~60 MB."""
    limit = 1024 * 1024
    path = tmp_path / "obt.sqlite3"
    store = SQLiteStore(path, wal_limit_bytes=limit, checkpoint_every_s=0.01)
    await store.open()
    checkpointer = store._checkpointer
    assert checkpointer is not None
    try:

        async def appender(n: int, events: int) -> None:
            for seq in range(events):
                event = NewEvent(id=f"{n}-{seq}", type="HeartbeatReceived", data={"seq": seq})
                await store.append(f"client-{n}", [event], expected_version=seq, recorded_at=T0)

        await asyncio.gather(*(appender(n, 400) for n in range(32)))
        assert checkpointer.restarts > 0  # the WAL went past the limit and was started over
        # Once a RESTART has checkpointed what is there, the next commit starts the WAL from
        # its beginning and trims the file back to the limit.
        wal = tmp_path / "obt.sqlite3-wal"
        deadline = asyncio.get_running_loop().time() + 30
        extra = 0
        while wal.stat().st_size > limit:
            assert asyncio.get_running_loop().time() < deadline, "the WAL was never trimmed"
            await asyncio.sleep(0.01)  # a checkpoint round
            event = NewEvent(id=f"extra-{extra}", type="HeartbeatReceived", data={"seq": extra})
            await store.append("client-x", [event], expected_version=extra, recorded_at=T0)
            extra += 1
        assert await store.head() == 32 * 400 + extra
    finally:
        await store.close()
