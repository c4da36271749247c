"""The SQLite schema, the checks that a file is an OBT database, and error translation."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from obt.errors import StoreError, StoreMisconfigured, StoreUnavailable

# 'OBT1' in ASCII: marks the file as OBT's so another application's database is refused.
APPLICATION_ID = 0x4F425431
# 2: no `streams` table (a stream's version is the max over its (stream, version) index entries;
#    writing a version row per append cost a page per stream in every commit).
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    UNIQUE (stream, version)
);
CREATE INDEX events_by_type ON events (type, position);
CREATE INDEX events_by_recorded_at ON events (recorded_at);
CREATE TABLE docs (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    doc TEXT NOT NULL,
    client_id TEXT,
    sort REAL,
    PRIMARY KEY (collection, key)
) WITHOUT ROWID;
CREATE INDEX docs_by_client_sort ON docs (collection, client_id, sort);
CREATE INDEX docs_by_sort ON docs (collection, sort);
CREATE TABLE checkpoints (projection TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
"""

SQLITE_HEADER = b"SQLite format 3\x00"


def check_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a file OBT must not or cannot write."""
    directory = path.parent
    if not directory.is_dir():
        raise StoreMisconfigured(f"SQLite store {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        # WAL mode creates the -wal and -shm files beside the database.
        raise StoreMisconfigured(
            f"SQLite store {path}: the directory {directory} is read-only for this user"
        )
    if path.exists():
        if not path.is_file():
            raise StoreMisconfigured(f"SQLite store {path} is not a regular file")
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreMisconfigured(
                f"SQLite database {path} is read-only for this user; make the file writable "
                "for the user running OBT (nothing was changed)"
            )
        if header and header != SQLITE_HEADER:
            raise StoreMisconfigured(
                f"{path} is not an OBT database (not even an SQLite file); "
                "point OBT_DATA_DIR at another directory or move the file away"
            )


def is_new(connection: sqlite3.Connection, path: Path) -> bool:
    """True for an empty file; raise for a file that is not a current OBT database.

    Runs before anything is written (even the switch to WAL), so a refused file is untouched.
    """
    application_id = connection.execute("PRAGMA application_id").fetchone()[0]
    user_version = connection.execute("PRAGMA user_version").fetchone()[0]
    if application_id == 0:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        if tables:
            raise StoreMisconfigured(
                f"{path} is an SQLite database but not OBT's (it holds tables "
                f"{', '.join(tables[:5])}); point OBT_DATA_DIR at another directory"
            )
        return True
    if application_id != APPLICATION_ID:
        raise StoreMisconfigured(
            f"{path} belongs to another application (application_id {application_id:#x}); "
            "point OBT_DATA_DIR at another directory"
        )
    if user_version > SCHEMA_VERSION:
        raise StoreMisconfigured(
            f"{path} has OBT schema version {user_version}, newer than this OBT "
            f"({SCHEMA_VERSION}); upgrade OBT or restore a matching backup"
        )
    return False


def create_schema(connection: sqlite3.Connection) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


# Indexes added after schema version 1 shipped: created on open when missing.
LATER_INDEXES = ("CREATE INDEX IF NOT EXISTS docs_by_sort ON docs (collection, sort)",)


def upgrade_schema(connection: sqlite3.Connection) -> None:
    """Bring an older OBT database to this version; the events themselves never change."""
    for statement in LATER_INDEXES:
        connection.execute(statement)
    if connection.execute("PRAGMA user_version").fetchone()[0] < 2:
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute("DROP TABLE IF EXISTS streams")
            connection.execute("PRAGMA user_version = 2")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


STREAM_VERSION = "SELECT max(version) FROM events WHERE stream = ?"


def translate(path: Path, exc: sqlite3.Error) -> StoreError:
    """A StoreError naming the file and the cause, for an error SQLite raised."""
    message = str(exc)
    lowered = message.lower()
    if "locked" in lowered or "busy" in lowered:
        return StoreUnavailable(
            f"SQLite database {path} is locked by another connection or process ({message}); "
            "is a second OBT server using the same file?"
        )
    if "disk is full" in lowered or "database or disk is full" in lowered:
        return StoreUnavailable(f"SQLite database {path}: the disk is full ({message})")
    if "readonly" in lowered or "read-only" in lowered:
        return StoreMisconfigured(
            f"SQLite database {path} is read-only ({message}); make the file and its "
            "directory writable for the user running OBT"
        )
    if "unable to open" in lowered:
        return StoreMisconfigured(
            f"cannot open SQLite database {path} ({message}); check the directory exists "
            "and is writable"
        )
    if "not a database" in lowered or "malformed" in lowered:
        return StoreMisconfigured(f"{path} is not a usable OBT database ({message})")
    return StoreUnavailable(f"SQLite database {path}: {message}")
