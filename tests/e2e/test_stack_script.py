"""`python -m tests.e2e.stack`, as the browser tests run it: one JSON line, a registered agent,
a controllable fake Ollama, and a clean stop of all three processes on SIGTERM."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

from tests.support.processes import REPO_ROOT, free_port, wait_until

LINE_TIMEOUT_S = 60.0


def read_line(stream: IO[bytes], timeout: float) -> bytes:
    """One line from a pipe, or an AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError(f"no line within {timeout} s (so far {buffer!r})")
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"the stack closed stdout (so far {buffer!r})")
            buffer += chunk
    return buffer


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stack_starts_reports_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    stderr_path = tmp_path / "stack.err"
    with stderr_path.open("wb") as stderr:
        stack = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.stack", "--port", str(port), "--data-dir", data_dir],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert stack.stdout is not None
    try:
        info: dict[str, Any] = json.loads(read_line(stack.stdout, LINE_TIMEOUT_S))
        assert info["base_url"] == f"http://127.0.0.1:{port}"
        assert info["data_dir"] == str(data_dir.resolve())
        pids = [info[k] for k in ("server_pid", "agent_pid", "ollama_pid")]
        assert all(alive(pid) for pid in pids)

        api = f"{info['base_url']}/api/v1"
        client = f"{api}/clients/{info['client_id']}"

        def online_with_models() -> bool:
            body: dict[str, Any] = httpx.get(client, timeout=5).json()
            return body.get("status") == "online" and int(body.get("models_count", 0)) > 0

        wait_until(online_with_models, 20, lambda: httpx.get(client, timeout=5).text)
        state = httpx.get(f"{info['ollama_control_url']}/state", timeout=5).json()
        assert state["mode"] == "ok"
        assert httpx.get(f"{info['ollama_url']}/api/version", timeout=5).status_code == 200
        # The tokens in the line are the server's.
        admin = httpx.get(
            f"{api}/clients/nobody",
            headers={"Authorization": f"Bearer {info['admin_token']}"},
            timeout=5,
        )
        assert admin.status_code == 404

        stack.send_signal(signal.SIGTERM)
        assert stack.wait(30) == 0, stderr_path.read_text()
        assert not any(alive(pid) for pid in pids)
        assert stack.stdout.read() == b"", "the stack printed more than one line"
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait(10)
        stack.stdout.close()
    # The data dir given is kept, with the log in it.
    assert (data_dir / "obt.sqlite3").exists()
    assert "agent stopped (0)" in stderr_path.read_text()
