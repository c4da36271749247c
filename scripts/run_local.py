"""`make run`: the OBT server (SQLite in ./data) with the dashboard on :8881, plus one local agent.

Ctrl+C stops both: the agent first (it deregisters, so this machine reads as stopped, not
offline), then the server (which records its clean stop).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_for_health(url: str, server: subprocess.Popen[bytes], deadline_s: float = 60) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)  # polling a process we just started; not a test
    return False


def stop(process: subprocess.Popen[bytes] | None, name: str) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop in 10 s; killing it", file=sys.stderr)
        process.kill()
        process.wait()


def main() -> int:
    env = os.environ.copy()
    data_dir = Path(env.setdefault("OBT_DATA_DIR", str(ROOT / "data"))).resolve()
    host = env.get("OBT_HOST", "127.0.0.1")
    port = env.get("OBT_PORT", "8881")
    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{local}:{port}"
    server = subprocess.Popen([str(BIN / "obt"), "serve"], env=env)
    agent = None
    try:
        if not wait_for_health(f"{base}/api/v1/health", server):
            print("the OBT server did not start; see its messages above", file=sys.stderr)
            return 1
        token = env.get("OBT_ENROLLMENT_TOKEN") or (
            (data_dir / "enrollment-token").read_text(encoding="utf-8").strip()
        )
        agent_env = {
            **env,
            "OBT_SERVER_URL": base,
            "OBT_ENROLLMENT_TOKEN": token,
            "OBT_AGENT_STATE_DIR": env.get("OBT_AGENT_STATE_DIR", str(data_dir / "agent")),
        }
        agent = subprocess.Popen([str(BIN / "obt-agent")], env=agent_env)
        print(
            f"\nOBT is running: dashboard {base}/  API docs {base}/docs\n"
            f"Enrollment token for other machines' agents: {data_dir / 'enrollment-token'}\n"
            "A local agent reports this machine. Ctrl+C stops both.\n",
            flush=True,
        )
        while server.poll() is None:
            if agent is not None and agent.poll() is not None:
                print(
                    f"the local agent exited ({agent.returncode}); the server keeps running. "
                    "Run `obt-agent doctor` to see why.",
                    file=sys.stderr,
                )
                agent = None
            time.sleep(0.5)
        return server.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop(agent, "the agent")
        stop(server, "the server")


if __name__ == "__main__":
    sys.exit(main())
