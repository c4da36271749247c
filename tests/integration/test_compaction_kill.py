"""kill -9 at each step of compaction: every event stays in the log or in a verified segment,
and after `obt compact` recovers, none is in both. Real processes, a real SQLite file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from obt.bootstrap import make_codec
from obt.compaction import STEPS
from obt.store.archive import read_events, uncompress
from obt.store.archive_files import FileArchive
from obt.store.sqlite import SQLiteStore
from tests.support.processes import REPO_ROOT, ServerProcess

from .test_archive_cli import seed


async def log_and_archive(data_dir: Path) -> tuple[set[int], list[int]]:
    store = SQLiteStore(data_dir / "obt.sqlite3", make_codec())
    await store.open()
    try:
        live = {e.position for e in await store.read_all(limit=10_000)}
    finally:
        await store.close()
    archive = FileArchive(data_dir / "archive")
    archived: list[int] = []
    for entry in await archive.entries():
        body = await archive.body(entry.segment_id)
        archived.extend(int(line["position"]) for line in read_events(uncompress(body)))
    return live, archived


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_loses_nothing_and_recovery_doubles_nothing(
    tmp_path: Path, step: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    history = {int(str(e["position"])) for e in asyncio.run(seed(data_dir))}
    killed = subprocess.run(
        [sys.executable, "-m", "tests.support.compact_and_die", str(data_dir), step],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr
    live, archived = asyncio.run(log_and_archive(data_dir))
    assert history <= live | set(archived), "an event is in neither the log nor the archive"
    server = ServerProcess(data_dir)
    recovered = server.run_cli("compact")
    assert recovered.returncode == 0, recovered.stderr
    finished = "finished 1 interrupted compaction(s)" in recovered.stdout
    assert finished == (step != "recorded"), recovered.stdout
    live, archived = asyncio.run(log_and_archive(data_dir))
    assert not live & set(archived), "an event is in both the log and the archive"
    assert len(archived) == len(set(archived))
    assert history <= live | set(archived)
    assert len(archived) > 20  # the killed run's first segment, and the rest after recovery
    verified = server.run_cli("archive", "verify")
    assert verified.returncode == 0, verified.stderr
