"""Moves the WAL into the database file on its own thread, off the writer's path.

With SQLite's automatic checkpoints, every ~1,000 pages one commit also copies the WAL into
the database and syncs it, and every append queued behind that commit waits (measured: ~12 %
of append throughput). Here a second connection runs PASSIVE checkpoints, which never block
the writer or readers, once a second.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(self, path: Path, synchronous: str, every_s: float = 1.0) -> None:
        self._path = path
        self._synchronous = synchronous
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="obt-sqlite-checkpoint", daemon=True)
        self.checkpoints = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            # The writer reports an unusable file; SQLite's own checkpoint on close still runs.
            self.last_error = str(exc)
            log.warning("no background WAL checkpoints for %s: %s", self._path, exc)
            return
        try:
            connection.execute(f"PRAGMA synchronous = {self._synchronous}")
            while not self._stop.wait(self._every_s):
                self._checkpoint(connection)
            self._checkpoint(connection)  # leave little for the next start to replay
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            # Busy, read-only or full: the WAL keeps the data; the next round tries again.
            if self.last_error != str(exc):
                log.warning("WAL checkpoint of %s failed: %s", self._path, exc)
            self.last_error = str(exc)
        else:
            self.checkpoints += 1
            self.last_error = None
