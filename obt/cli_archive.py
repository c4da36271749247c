"""`obt compact`, `obt archive verify` and `obt archive restore`: retention by hand, for operators
and auditors. Each opens the configured store (beside a running server is fine)."""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

from obt.compaction import Compactor
from obt.settings import Settings
from obt.store.ports import CompactableStore, RecordedEvent


async def compact(settings: Settings, *, dry_run: bool) -> int:
    from obt.bootstrap import SystemClock, bootstrap

    if settings.heartbeat_retention <= timedelta(0):
        print("OBT_HEARTBEAT_RETENTION is 0: compaction is off, nothing to do")
        return 0
    obt = await bootstrap(settings)
    try:
        store = cast("CompactableStore", obt.store)
        compactor = Compactor(store, settings.heartbeat_retention, SystemClock().now)
        report = await compactor.run(dry_run=dry_run)
        print(("dry run: " if dry_run else "") + report.summary())
        return 0
    finally:
        await obt.store.close()


async def verify(settings: Settings) -> int:
    from obt.bootstrap import bootstrap
    from obt.store.archive_verify import verify_archive

    obt = await bootstrap(settings)
    try:
        store = cast("CompactableStore", obt.store)
        report = await verify_archive(store.archive(), store)
        print(report.summary())
        for finding in report.findings:
            print(f"  {finding}", file=sys.stderr)
        return 0 if report.ok else 1
    finally:
        await obt.store.close()


async def restore(
    settings: Settings, to: Path, since: datetime | None, until: datetime | None
) -> int:
    """Write the log with its archived events back in place into a new SQLite store in `to`.

    Positions, ids, versions and times are kept, so `OBT_DATA_DIR=<to> obt replay` (or a
    server pointed at it) replays exactly what happened. Only events recorded in
    [since, until) when those are given.
    """
    from obt.bootstrap import bootstrap
    from obt.store.archived_log import ArchivedLog

    # A one-shot command: blocking file work holds up nothing else on this loop.
    target = to / "obt.sqlite3"
    if target.exists():
        print(f"obt: {target} exists already; restore into an empty directory", file=sys.stderr)
        return 2
    to.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
    obt = await bootstrap(settings)
    try:
        store = cast("CompactableStore", obt.store)
        merged = ArchivedLog(store, store.archive())
        connection = _scratch_store(target)
        count = 0
        try:
            after = 0
            while batch := await merged.read_all(
                after=after, limit=5000, recorded_from=since, recorded_to=until
            ):
                connection.executemany(_INSERT, [_row(e) for e in batch])
                count += len(batch)
                after = batch[-1].position
            connection.execute("COMMIT")
        finally:
            connection.close()
        print(f"restored {count} events into {target}")
        return 0
    finally:
        await obt.store.close()


_INSERT = (
    "INSERT INTO events (position, id, stream, version, type, schema_version, data, metadata,"
    " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _scratch_store(path: Path) -> sqlite3.Connection:
    from obt.store.sqlite_schema import create_schema

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    create_schema(connection)
    connection.execute("BEGIN IMMEDIATE")
    return connection


def _row(event: RecordedEvent) -> tuple[object, ...]:
    from obt.store.codec import dumps

    return (
        event.position,
        event.id,
        event.stream,
        event.version,
        event.type,
        event.schema_version,
        dumps(event.data),
        dumps(event.metadata),
        event.recorded_at.timestamp(),
    )
