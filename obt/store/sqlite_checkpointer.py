"""Moves the WAL into the database file on its own thread, off the writer's path.

With SQLite's automatic checkpoints, every ~1,000 pages one commit also copies the WAL into
the database and syncs it, and every append queued behind that commit waits (measured: ~12 %
of append throughput). Here a second connection runs PASSIVE checkpoints, which never block
the writer or readers, once a second.

A PASSIVE checkpoint never finishes while commits keep coming, and SQLite starts the WAL over
only after one that did: under sustained load the WAL grew without end (1.1 GB for 100,000
events in bench/store_bench.py). So once the WAL holds more than `wal_limit_bytes`, the round
ends with a RESTART checkpoint: it waits for the writer's current commit, copies the little
the PASSIVE one left, and the next commit starts the WAL from its beginning, over blocks the
file already has (`journal_size_limit` trims a WAL that grew past the limit).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)


WAL_LIMIT_BYTES = 64 * 1024 * 1024


class Checkpointer:
    def __init__(
        self,
        path: Path,
        synchronous: str,
        every_s: float = 1.0,
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._every_s = every_s
        self.wal_limit_bytes = wal_limit_bytes
        self.restarts = 0
        self._page_bytes = 4096 + 24  # a WAL frame: a page and its header; read at start
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
            # A RESTART checkpoint holds the write lock while it waits for readers of older
            # snapshots: it gives up after 0.1 s (and tries next round) rather than stall appends.
            connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=0.1
            )
        except sqlite3.Error as exc:
            # The writer reports an unusable file; SQLite's own checkpoint on close still runs.
            self.last_error = str(exc)
            log.warning("no background WAL checkpoints for %s: %s", self._path, exc)
            return
        try:
            connection.execute(f"PRAGMA synchronous = {self._synchronous}")
            self._page_bytes = connection.execute("PRAGMA page_size").fetchone()[0] + 24
            while not self._stop.wait(self._every_s):
                self._checkpoint(connection)
            self._checkpoint(connection)  # leave little for the next start to replay
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            _, frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames * self._page_bytes > self.wal_limit_bytes:
                busy, _, _ = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                self.restarts += not busy  # busy: a reader was in the way; next round
        except sqlite3.Error as exc:
            # Busy, read-only or full: the WAL keeps the data; the next round tries again.
            if self.last_error != str(exc):
                log.warning("WAL checkpoint of %s failed: %s", self._path, exc)
            self.last_error = str(exc)
        else:
            self.checkpoints += 1
            self.last_error = None
