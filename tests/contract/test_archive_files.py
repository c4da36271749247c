"""The file archive's crash behaviour: a torn manifest line or an orphan segment file (a crash
between the two writes of an append) is as if the append never happened."""

from __future__ import annotations

from pathlib import Path

from obt.store.archive import build_segment, segment_id_for
from obt.store.archive_files import FileArchive
from obt.store.memory import MemoryStore

from .test_archive import some_events


async def test_a_torn_manifest_line_and_an_orphan_file_are_not_an_append(tmp_path: Path) -> None:
    store = MemoryStore()
    events = await some_events(store, 6)
    archive = FileArchive(tmp_path / "archive")
    first = build_segment(events[:2], None, segment_id_for(1, 1))
    await archive.append(first)
    second = build_segment(events[2:4], first.entry, segment_id_for(2, 3))
    # The crash: the segment file is whole, its manifest line only half written.
    archive.segment_path(second.entry.segment_id).write_bytes(second.body)
    with archive.manifest_path.open("ab") as manifest:
        manifest.write(b'{"sequence": 2, "segment_id": "000')
    assert [e.segment_id for e in await archive.entries()] == [first.entry.segment_id]
    await archive.append(second)  # the retried append replaces both
    entries = await archive.entries()
    assert [e.segment_id for e in entries] == [first.entry.segment_id, second.entry.segment_id]
    assert await archive.body(second.entry.segment_id) == second.body
    assert archive.manifest_path.read_bytes().count(b"\n") == 2
