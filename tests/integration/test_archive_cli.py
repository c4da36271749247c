"""`obt compact`, `obt archive verify` and `obt archive restore` as an operator runs them, and
`include_archived=true` on the real server: each verify finding (altered, missing, reordered)
is named with exit 1."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from obt.bootstrap import make_codec
from obt.store.archive_files import FileArchive
from obt.store.sqlite import SQLiteStore
from tests.support.clock import FakeClock
from tests.support.fleet import Fleet
from tests.support.processes import ServerProcess

EVENT_KEYS = ("position", "id", "stream", "version", "type", "data")


async def seed(data_dir: Path) -> list[dict[str, object]]:
    """Three weeks ago, and again 16 days ago: two clients beat 15 times each; yesterday, one
    more registration."""
    store = SQLiteStore(data_dir / "obt.sqlite3", make_codec())
    await store.open()
    try:
        fleet = Fleet(store, FakeClock(datetime.now(UTC) - timedelta(days=21)))
        await fleet.start()
        for cid in ("a", "b"):
            await fleet.register(cid)
        for days_ago in (21, 16):
            fleet.clock.current = datetime.now(UTC) - timedelta(days=days_ago)
            for _ in range(15):
                fleet.clock.advance(10)
                for cid in ("a", "b"):
                    await fleet.heartbeat(cid)
        fleet.clock.current = datetime.now(UTC) - timedelta(days=1)
        await fleet.register("c")
        await fleet.lifecycle.record_stop(fleet.clock.now())
        return [{k: getattr(e, k) for k in EVENT_KEYS} for e in await store.read_all(limit=10_000)]
    finally:
        await store.close()


@pytest.fixture
def compacted(tmp_path: Path) -> tuple[ServerProcess, list[dict[str, object]]]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    history = asyncio.run(seed(data_dir))
    server = ServerProcess(data_dir)
    dry = server.run_cli("compact", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would move 56 heartbeats" in dry.stdout
    server.extra_env["OBT_HEARTBEAT_RETENTION"] = "18d"  # the first period only
    first = server.run_cli("compact")
    assert first.returncode == 0, first.stderr
    assert "moved 28 heartbeats to the archive in 1 segment" in first.stdout
    del server.extra_env["OBT_HEARTBEAT_RETENTION"]  # the default, 14 days
    second = server.run_cli("compact")
    assert second.returncode == 0, second.stderr
    # A run starts where the last segment ended, knowing nothing of what came before: it keeps
    # the first heartbeat it meets in each stream (one per stream more than a single run).
    assert "moved 26 heartbeats to the archive in 1 segment" in second.stdout
    return server, history


def test_verify_passes_then_names_each_altered_missing_or_reordered_segment(
    compacted: tuple[ServerProcess, list[dict[str, object]]],
) -> None:
    server, _ = compacted
    ok = server.run_cli("archive", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "2 segments, 54 events" in ok.stdout and "checks out" in ok.stdout
    archive = FileArchive(server.data_dir / "archive")
    first, second = asyncio.run(archive.entries())
    path = archive.segment_path(second.segment_id)
    original = path.read_bytes()

    path.write_bytes(original[:-8] + b"\x00" * 8)
    altered = server.run_cli("archive", "verify")
    assert altered.returncode == 1
    assert f"segment {second.segment_id}: altered" in altered.stderr
    assert first.segment_id not in altered.stderr

    path.unlink()
    missing = server.run_cli("archive", "verify")
    assert missing.returncode == 1
    assert f"segment {second.segment_id}: missing" in missing.stderr
    assert first.segment_id not in missing.stderr
    path.write_bytes(original)
    assert server.run_cli("archive", "verify").returncode == 0

    lines = archive.manifest_path.read_bytes().splitlines(keepends=True)
    archive.manifest_path.write_bytes(lines[1] + lines[0])
    reordered = server.run_cli("archive", "verify")
    assert reordered.returncode == 1
    assert f"segment {first.segment_id}: reordered" in reordered.stderr
    assert f"segment {second.segment_id}: reordered" in reordered.stderr


def test_restore_writes_every_event_back_in_place(
    compacted: tuple[ServerProcess, list[dict[str, object]]], tmp_path: Path
) -> None:
    server, history = compacted
    target = tmp_path / "restored"
    done = server.run_cli("archive", "restore", "--to", str(target))
    assert done.returncode == 0, done.stderr

    async def read_back() -> list[dict[str, object]]:
        store = SQLiteStore(target / "obt.sqlite3", make_codec())
        await store.open()
        try:
            return [
                {k: getattr(e, k) for k in EVENT_KEYS} for e in await store.read_all(limit=10_000)
            ]
        finally:
            await store.close()

    restored = asyncio.run(read_back())
    assert [e for e in restored if e["type"] != "LogCompacted"] == history
    again = server.run_cli("archive", "restore", "--to", str(target))
    assert again.returncode == 2 and "exists already" in again.stderr
    window = server.run_cli(
        "archive", "restore", "--to", str(tmp_path / "window"), "--from", "not-a-time"
    )
    assert window.returncode == 2 and "--from" in window.stderr


def test_the_server_serves_archived_events_when_asked(
    compacted: tuple[ServerProcess, list[dict[str, object]]],
) -> None:
    server, history = compacted
    with server.serving(), server.client() as http:
        live = http.get("/events", params={"limit": 1000}).json()["items"]
        merged = http.get("/events", params={"limit": 1000, "include_archived": "true"})
        assert merged.status_code == 200
        items = merged.json()["items"]
        export = http.get("/events/export", params={"include_archived": "true"}).text
        metrics = http.get(f"{server.base_url}/metrics").text
        storage = http.get("/storage").json()
    assert storage["archive"]["segments"] == 2 and storage["archive"]["events"] == 54
    assert storage["last_compaction"]["removed"] == 26  # the second run's one segment
    assert storage["log"]["bytes"] > 0 and storage["retention_s"] == 14 * 86400
    assert storage["archive"]["last_position"] < storage["log"]["head"]
    archive = FileArchive(server.data_dir / "archive")
    segment_bytes = sum(e.compressed_bytes for e in asyncio.run(archive.entries()))
    gauges = dict(line.split(" ", 1) for line in metrics.splitlines() if line.startswith("obt_"))
    assert float(gauges["obt_archive_bytes"]) == segment_bytes > 0
    assert float(gauges["obt_log_bytes"]) > 0
    assert len(live) < len(items)
    positions = [e["position"] for e in items]
    assert positions == sorted(positions)
    wanted = [e["position"] for e in history]
    assert [p for p, e in zip(positions, items, strict=True) if e["type"] != "LogCompacted"][
        : len(wanted)
    ] == wanted
    exported = [json.loads(line)["position"] for line in export.splitlines()]
    assert exported[: len(wanted)] == wanted
