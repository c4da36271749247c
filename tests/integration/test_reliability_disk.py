"""A running server whose SQLite file system fills up (a small tmpfs): heartbeats get a 503
naming the file and the full disk, reads go on, nothing acknowledged is lost or corrupted; a
start on the full disk fails with that message, and the next start works once there is room."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.simulated_agent import SimulatedAgent, heartbeat_counts
from tests.support.processes import Launcher, ServerProcess

TMPFS_SIZE = "8M"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system has no room left; returns it (delete to free)."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as f:
        while True:
            try:
                f.write(chunk)
                f.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        with contextlib.suppress(OSError):
            os.fsync(f.fileno())
    return filler


@pytest.mark.timeout(120)
def test_a_full_disk_is_a_clear_503_and_loses_nothing(small_disk: Path, launch: Launcher) -> None:
    server = launch(
        ServerProcess(
            small_disk / "data",
            interval_s=10,
            timeout_s=30,
            log_dir=small_disk.parent / "logs",
        )
    )
    agent = SimulatedAgent(server, "disk-1")
    with server.client() as http:
        assert agent.register(http).status_code == 201
        for _ in range(5):
            assert agent.heartbeat(http).status_code == 200

        filler = fill(small_disk)
        refused = None
        for _ in range(2000):  # the WAL may still have room for a few
            response = agent.heartbeat(http)
            if response.status_code != 200:
                refused = response
                break
        assert refused is not None, "no heartbeat was refused on a full disk"
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "store_unavailable"
        assert "disk is full" in refused.json()["detail"]
        assert str(server.data_dir / "obt.sqlite3") in refused.json()["detail"]
        assert refused.headers["Retry-After"]
        assert http.get(f"/clients/{agent.client_id}").status_code == 200  # reads go on

        filler.unlink()  # room again: the same process writes on
        assert agent.heartbeat(http, seq=agent.seq).status_code == 200
        assert agent.heartbeat(http).status_code == 200

    # A start on a full disk fails, saying why; the next one, with room, works.
    assert server.stop() in (0, -15)
    filler = fill(small_disk)
    server.spawn()
    code = server.wait(30)
    assert code != 0
    assert "disk is full" in server.output(), server.output()
    filler.unlink()
    server.start()
    with server.client() as http:
        counts = heartbeat_counts(http, agent)
        assert agent.acknowledged <= counts.keys()
        assert all(n == 1 for n in counts.values()), counts
        assert agent.heartbeat(http).status_code == 200
    server.stop()
    check = sqlite3.connect(server.data_dir / "obt.sqlite3")
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        check.close()
