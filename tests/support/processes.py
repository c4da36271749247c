"""Real processes for integration and end-to-end tests: the OBT server, the agent, a fake Ollama.

Each process runs from a temporary working directory (so no stray `.env` is read), writes its
stdout and stderr to files (one pair per start, so a restart keeps the earlier run's output)
and is waited on with deadlines: nothing here sleeps for a fixed time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
LOG_TAIL_LINES = 60
# uvicorn re-raises SIGTERM after its graceful shutdown, so a clean stop may end "by signal"
# (service managers count that as clean too).
CLEAN_EXITS = (0, -signal.SIGTERM)

T = TypeVar("T")
P = TypeVar("P", bound="ManagedProcess")


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    message: str | Callable[[], str],
    interval: float = 0.05,
) -> T:
    """Poll `predicate` until it returns something truthy, and return that; fail at the
    deadline with `message` (a callable is evaluated then, e.g. to show the last state)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:.1f} s: {text}")
        time.sleep(interval)


def random_token() -> str:
    return secrets.token_urlsafe(24)


class ManagedProcess:
    """A child process with its output in files under `log_dir`."""

    name = "process"

    def __init__(self, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.extra_env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._runs = 0
        self.logs: list[Path] = []
        self.last_returncode: int | None = None

    # -- what subclasses provide -------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {}

    def wait_ready(self, deadline: float) -> None:
        """Block until the process does its job; raise with its output at the deadline."""

    # -- life cycle ---------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self._proc is not None, f"{self.name} is not running"
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT_S) -> Self:
        """Spawn the process and wait until it is ready (killed again if it never is)."""
        return self.spawn().ready(timeout)

    def spawn(self) -> Self:
        """Start the process without waiting; call `ready()` next (see `start_together`)."""
        assert not self.running, f"{self.name} is already running"
        self._runs += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        workdir = self.log_dir / f"{self.name}-cwd"
        workdir.mkdir(exist_ok=True)
        out_path = self.log_dir / f"{self.name}-{self._runs}.out"
        err_path = self.log_dir / f"{self.name}-{self._runs}.err"
        self.logs += [out_path, err_path]
        env = _base_env()
        env.update(self.environment())
        env.update(self.extra_env)
        with out_path.open("wb") as out, err_path.open("wb") as err:
            # The child keeps its own copies of the descriptors; ours close with the block.
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=workdir,
                env=env,
                # Its own session: a Ctrl+C meant for the test run (or the e2e stack) reaches
                # the children only through stop(), in order (agent before server).
                start_new_session=True,
            )
        return self

    def ready(self, timeout: float = START_TIMEOUT_S) -> Self:
        try:
            self.wait_ready(time.monotonic() + timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self._proc.returncode}\n{self.output()}"
            )

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then wait for the exit; returns the exit code (SIGKILL at the deadline)."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL, as a crash or `kill -9` would; returns the exit code (-9)."""
        return self._end(signal.SIGKILL, STOP_TIMEOUT_S)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself."""
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} did not exit within {timeout} s\n{self.output()}"
            ) from None
        self._forget(code)
        return code

    def _end(self, sig: signal.Signals, timeout: float) -> int:
        proc = self._proc
        if proc is None:
            return self.last_returncode if self.last_returncode is not None else 0
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
                self._forget(proc.returncode)
                raise AssertionError(
                    f"{self.name} ignored {sig.name} for {timeout} s and was killed\n"
                    f"{self.output()}"
                ) from None
        self._forget(proc.returncode)
        return proc.returncode

    def _forget(self, code: int) -> None:
        self.last_returncode = code
        self._proc = None

    def output(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of every log this process wrote, for failure messages."""
        parts = []
        for path in self.logs:
            if not path.exists():
                continue
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            if text:
                tail = "\n".join(text[-lines:])
                parts.append(f"--- {path.name} (last {min(lines, len(text))} lines) ---\n{tail}")
        return "\n".join(parts) or f"({self.name} wrote nothing)"

    def __enter__(self) -> Self:
        return self.start() if not self.running else self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_together(*processes: ManagedProcess, timeout: float = START_TIMEOUT_S) -> None:
    """Start independent processes at once (their start-up costs overlap), then wait for
    each; on a failure every one of them is stopped again."""
    try:
        for process in processes:
            process.spawn()
        for process in processes:
            process.ready(timeout)
    except BaseException:
        for process in processes:
            process.kill()
        raise


def _base_env() -> dict[str, str]:
    """The parent's environment without OBT/Ollama settings, so only ours apply."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OBT_", "OLLAMA_")) and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


class ServerProcess(ManagedProcess):
    """`obt serve` on a free port, with short liveness timings and known tokens."""

    name = "server"

    def __init__(
        self,
        data_dir: Path,
        *,
        store: str = "sqlite",
        mongodb_uri: str | None = None,
        mongodb_db: str | None = None,
        port: int | None = None,
        interval_s: float = 1.0,
        timeout_s: float = 3.0,
        tick_s: float = 0.2,
        log_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(log_dir or data_dir.parent / f"{data_dir.name}-logs", env)
        if store == "mongodb" and not (mongodb_uri and mongodb_db):
            raise ValueError("the mongodb store needs mongodb_uri and mongodb_db")
        self.data_dir = data_dir
        self.store = store
        self.mongodb_uri = mongodb_uri
        self.mongodb_db = mongodb_db
        self.port = port or free_port()
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.tick_s = tick_s
        self.admin_token = random_token()
        self.enrollment_token = random_token()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    def settings_env(self) -> dict[str, str]:
        """The OBT_* settings this server runs with (the CLI commands take the same)."""
        env = {
            "OBT_HOST": "127.0.0.1",
            "OBT_PORT": str(self.port),
            "OBT_STORE": self.store,
            "OBT_DATA_DIR": str(self.data_dir),
            "OBT_ADMIN_TOKEN": self.admin_token,
            "OBT_ENROLLMENT_TOKEN": self.enrollment_token,
            "OBT_HEARTBEAT_INTERVAL_S": str(self.interval_s),
            "OBT_HEARTBEAT_TIMEOUT_S": str(self.timeout_s),
            "OBT_SCHEDULER_TICK_S": str(self.tick_s),
            # Simulated agents send bursts; the limiter has its own unit tests.
            "OBT_RATE_LIMIT_PER_MIN": "1000000",
            "OBT_LOG_LEVEL": "info",
        }
        if self.store == "mongodb":
            assert self.mongodb_uri is not None and self.mongodb_db is not None
            env["OBT_MONGODB_URI"] = self.mongodb_uri
            env["OBT_MONGODB_DB"] = self.mongodb_db
        return env

    def command(self) -> list[str]:
        return [sys.executable, "-m", "obt.cli", "serve"]

    def environment(self) -> dict[str, str]:
        return self.settings_env()

    def wait_ready(self, deadline: float) -> None:
        url = f"{self.api_url}/health"
        while not _http_ok(url):
            self.check_alive()
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name}: {url} did not answer 200\n{self.output()}")
            time.sleep(0.05)

    def stop_cleanly(self) -> None:
        """SIGTERM and wait; the server must exit as from a clean shutdown."""
        code = self.stop()
        assert code in CLEAN_EXITS, f"the server exited with {code} on SIGTERM\n{self.output()}"

    @contextlib.contextmanager
    def serving(self) -> Iterator[Self]:
        """Started for the block, then stopped; the stop must be clean."""
        self.start()
        try:
            yield self
        finally:
            self.stop_cleanly()

    def restart(self, timeout: float = START_TIMEOUT_S) -> Self:
        """SIGTERM, wait, start again on the same port and data dir; returns self."""
        self.stop_cleanly()
        return self.start(timeout)

    def run_cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run another `obt` command (e.g. `projections rebuild`) with this server's settings."""
        env = _base_env()
        env.update(self.settings_env())
        env.update(self.extra_env)
        workdir = self.log_dir / f"{self.name}-cwd"
        workdir.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [sys.executable, "-m", "obt.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=workdir,
            env=env,
            check=False,
        )

    def client(self, token: str | None = None, timeout: float = 10.0) -> httpx.Client:
        """An HTTP client for the API (`/api/v1` is the base); close it (or use `with`)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=timeout)


class FakeOllamaProcess(ManagedProcess):
    """`python -m tests.fakes.ollama` on a free port, controlled over `/_fake/...`."""

    name = "ollama"

    def __init__(
        self, log_dir: Path, *, port: int | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(log_dir, env)
        self.port = port or free_port()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/_fake"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tests.fakes.ollama",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def wait_ready(self, deadline: float) -> None:
        # The control API answers in every failure mode, unlike Ollama's own endpoints.
        url = f"{self.control_url}/state"
        while not _http_ok(url):
            self.check_alive()
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name}: {url} did not answer\n{self.output()}")
            time.sleep(0.05)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.control_url}{path}", json=body, timeout=5.0)
        response.raise_for_status()
        return response.json()

    def set_mode(self, mode: str) -> None:
        self.control("POST", "/mode", {"mode": mode})

    def add_model(self, name: str, **fields: Any) -> None:
        self.control("POST", "/models", {"name": name, **fields})

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.control("GET", "/state")
        return state


class AgentProcess(ManagedProcess):
    """`obt-agent run` with its own state dir, pointed at a server and an Ollama."""

    name = "agent"

    def __init__(
        self,
        log_dir: Path,
        *,
        server_url: str,
        ollama_url: str,
        enrollment_token: str | None,
        client_id: str,
        state_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(log_dir, env)
        self.server_url = server_url
        self.ollama_url = ollama_url
        self.enrollment_token = enrollment_token
        self.client_id = client_id
        self.state_dir = state_dir or log_dir / "agent-state"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "agent", "-v", "run"]

    def environment(self) -> dict[str, str]:
        env = {
            "OBT_SERVER_URL": self.server_url,
            "OBT_CLIENT_ID": self.client_id,
            "OBT_AGENT_STATE_DIR": str(self.state_dir),
            "OLLAMA_HOST": self.ollama_url,
        }
        if self.enrollment_token:
            env["OBT_ENROLLMENT_TOKEN"] = self.enrollment_token
        return env

    def wait_ready(self, deadline: float) -> None:
        # Started means running: whether it registered is for the test to check.
        self.check_alive()


class Launcher:
    """Starts processes for one test and remembers them for the clean-up."""

    def __init__(self) -> None:
        self.launched: list[ManagedProcess] = []

    def __call__(self, process: P) -> P:
        self.launched.append(process)
        if not process.running:
            process.start()
        return process

    def together(self, *processes: ManagedProcess) -> None:
        """Start independent processes at once, so their start-up costs overlap."""
        self.launched += processes
        start_together(*processes)


class SecantusProcess(ManagedProcess):
    """The MongoDB stand-in (`secantusd-py`) as its own process, its data in a directory, so it
    can be stopped and started again with its data intact (store-outage tests)."""

    name = "secantus"

    def __init__(
        self, log_dir: Path, storage: Path, *, port: int | None = None, failpoints: bool = False
    ) -> None:
        super().__init__(log_dir)
        self.storage = storage
        self.port = port or free_port()
        self.failpoints = failpoints  # serve `configureFailPoint` (fault-injection tests)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false&directConnection=true"

    def command(self) -> list[str]:
        exe = Path(sys.executable).with_name("secantusd-py")
        return [
            str(exe),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storage-path",
            str(self.storage),
            "--log-level",
            "WARNING",
            *(["--enable-test-commands"] if self.failpoints else []),
        ]

    def wait_ready(self, deadline: float) -> None:
        while True:
            self.check_alive()
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name} did not listen\n{self.output()}")
            time.sleep(0.05)
