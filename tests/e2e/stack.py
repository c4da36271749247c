"""A whole OBT stack for browser tests: a fake Ollama, the real server (SQLite, heartbeat
interval 1 s, timeout 3 s) and a real agent pointed at both.

    python -m tests.e2e.stack [--port N] [--data-dir DIR] [--ollama-port N] [--client-id ID]

(from the repository root, with the project's virtualenv Python, e.g. `.venv/bin/python`).

Once the agent has registered it prints ONE JSON line on stdout:

    {"base_url", "ollama_url", "ollama_control_url", "server_pid", "agent_pid", "ollama_pid",
     "admin_token", "enrollment_token", "client_id", "data_dir", "log_dir"}

and runs until SIGTERM or SIGINT, then stops the agent (which deregisters), the server and
the fake Ollama, and exits 0. Browser tests steer the stack through what the line gives them:
POST `{ollama_control_url}/mode` {"mode": "down"|"error"|"ok"|...} (and the other `/_fake`
routes, see tests/fakes/ollama.py) to change what Ollama answers, and SIGTERM `agent_pid` to
stop the agent. If the server dies by itself the stack stops the rest and exits 1.
Progress and failures go to stderr; every process's output is in `log_dir`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import httpx

from tests.support.processes import (
    AgentProcess,
    FakeOllamaProcess,
    ManagedProcess,
    ServerProcess,
    start_together,
    wait_until,
)

REGISTER_TIMEOUT_S = 30.0
WATCH_EVERY_S = 0.5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.e2e.stack",
        description="Run a fake Ollama, the OBT server and an agent for browser tests.",
    )
    parser.add_argument("--port", type=int, help="the OBT server's port (default: a free one)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the server's data dir, kept afterwards (default: a temporary one, removed)",
    )
    parser.add_argument("--ollama-port", type=int, help="the fake Ollama's port (default: free)")
    parser.add_argument("--client-id", default="e2e-agent", help="the agent's client id")
    return parser


def _log(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _workspace(data_dir: Path | None) -> Iterator[tuple[Path, Path]]:
    """(data dir, dir for logs and agent state); a temporary one is removed at the end."""
    if data_dir is not None:
        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        yield data_dir, data_dir / "stack"
        return
    root = Path(tempfile.mkdtemp(prefix="obt-e2e-"))
    try:
        yield root / "data", root / "stack"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _registered(server: ServerProcess, client_id: str) -> bool:
    try:
        response = httpx.get(f"{server.api_url}/clients/{client_id}", timeout=2.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    with _workspace(args.data_dir) as (data_dir, work_dir):
        started: list[ManagedProcess] = []
        try:
            ollama = FakeOllamaProcess(work_dir / "logs", port=args.ollama_port)
            server = ServerProcess(data_dir, port=args.port, log_dir=work_dir / "logs")
            started += [ollama, server]
            start_together(ollama, server)
            agent = AgentProcess(
                work_dir / "logs",
                server_url=server.base_url,
                ollama_url=ollama.base_url,
                enrollment_token=server.enrollment_token,
                client_id=args.client_id,
                state_dir=work_dir / "agent-state",
            )
            started.append(agent.start())
            wait_until(
                lambda: stop.is_set() or _registered(server, args.client_id),
                REGISTER_TIMEOUT_S,
                lambda: f"the agent did not register\n{agent.output(30)}",
            )
            if stop.is_set():
                return 0
            line = {
                "base_url": server.base_url,
                "ollama_url": ollama.base_url,
                "ollama_control_url": ollama.control_url,
                "server_pid": server.pid,
                "agent_pid": agent.pid,
                "ollama_pid": ollama.pid,
                "admin_token": server.admin_token,
                "enrollment_token": server.enrollment_token,
                "client_id": args.client_id,
                "data_dir": str(data_dir),
                "log_dir": str(work_dir / "logs"),
            }
            print(json.dumps(line), flush=True)
            _log(f"running at {server.base_url}; SIGTERM or Ctrl+C stops it")
            while not stop.wait(WATCH_EVERY_S):
                if not server.running:
                    _log(f"the server exited by itself\n{server.output(30)}")
                    return 1
            return 0
        except AssertionError as exc:
            _log(f"could not start: {exc}")
            return 1
        finally:
            # The agent first, so it can deregister from the server still running.
            for process in reversed(started):
                try:
                    code = process.stop()
                except AssertionError as exc:
                    _log(str(exc))
                else:
                    _log(f"{process.name} stopped ({code})")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return run(args, stop)


if __name__ == "__main__":
    sys.exit(main())
