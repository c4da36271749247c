"""The archive as files under OBT_DATA_DIR/archive/ (the SQLite store's archive).

`segments/<id>.ndjson.gz` holds a segment's bytes (plain gzip: `zcat` reads it) and
`manifest.ndjson` one manifest entry a line. A segment's file is written and synced under a
temporary name, renamed, then its entry is appended and synced: an entry never names a file
that is not whole, and a file without an entry (a crash in between) is ignored and replaced.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson

from obt.errors import ArchiveError
from obt.store.archive import ManifestEntry, Segment, check_chain
from obt.store.codec import dumps, loads_object

MANIFEST = "manifest.ndjson"
SEGMENTS = "segments"


class FileArchive:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = asyncio.Lock()

    def segment_path(self, segment_id: str) -> Path:
        return self.directory / SEGMENTS / f"{segment_id}.ndjson.gz"

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    async def entries(self) -> list[ManifestEntry]:
        return await asyncio.to_thread(self._entries)

    def _entries(self) -> list[ManifestEntry]:
        try:
            text = self.manifest_path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ArchiveError(f"the archive manifest {self.manifest_path}: {exc}") from None
        lines = text.split(b"\n")
        # A last line without its newline is an append that a crash cut short: not written.
        entries = []
        for number, line in enumerate(lines[:-1], start=1):
            if not line.strip():
                continue
            try:
                entries.append(ManifestEntry.from_doc(loads_object(line)))
            except (ValueError, orjson.JSONDecodeError) as exc:
                raise ArchiveError(
                    f"{self.manifest_path} line {number} cannot be read: {exc}"
                ) from None
        return entries

    async def append(self, segment: Segment) -> None:
        async with self._lock:
            await asyncio.to_thread(self._append, segment)

    def _append(self, segment: Segment) -> None:
        entries = self._entries()
        check_chain(entries[-1] if entries else None, segment.entry)
        path = self.segment_path(segment.entry.segment_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            with temporary.open("wb") as file:
                file.write(segment.body)
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(path)
            _sync_directory(path.parent)
            self._cut_torn_tail()
            with self.manifest_path.open("ab") as file:
                file.write(dumps(segment.entry.to_doc()).encode() + b"\n")
                file.flush()
                os.fsync(file.fileno())
            _sync_directory(self.directory)
        except OSError as exc:
            raise ArchiveError(f"cannot write to the archive {self.directory}: {exc}") from None

    def _cut_torn_tail(self) -> None:
        try:
            text = self.manifest_path.read_bytes()
        except FileNotFoundError:
            return
        if text and not text.endswith(b"\n"):
            with self.manifest_path.open("r+b") as file:
                file.truncate(text.rfind(b"\n") + 1)
                os.fsync(file.fileno())

    async def body(self, segment_id: str) -> bytes:
        path = self.segment_path(segment_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise ArchiveError(f"segment {segment_id} is missing ({path})") from None
        except OSError as exc:
            raise ArchiveError(f"segment {segment_id} cannot be read: {exc}") from None

    async def size_bytes(self) -> int:
        return await asyncio.to_thread(self._size)

    def _size(self) -> int:
        folder = self.directory / SEGMENTS
        if not folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in folder.glob("*.ndjson.gz"))


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
