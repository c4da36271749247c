"""The agent's cost on an Ollama machine: memory, CPU and requests, against the real server.

    python -m bench.agent_footprint [--minutes 3] [--interval 10] [--transport auto|http]

Runs the real OBT server (SQLite), the fake Ollama with a few models and the real agent
(`python -m agent run`, as `obt-agent` runs it, without `-v`) for `--minutes`, sampling the
agent's RSS (VmRSS) and CPU time (utime + stime) once a second. Halfway through, one model is
added on the fake Ollama: the agent should send one model report for it and none otherwise.
Requests are counted on the server: heartbeats from the event log, every agent route from the
`obt_request_duration_seconds_count` metric (HTTP only: frames on the channel are not requests),
model reports from the agent's own `models_reported` log lines (either transport); channels from
ChannelOpened events. Baseline in the same run: a bare
`python -c "import asyncio; asyncio.run(asyncio.sleep(N))"` process's RSS and CPU, so the
agent's own cost shows. Targets: RSS <= 60 MB, CPU <= 1 % of one core, one heartbeat a
interval plus a model report only on change.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import (
    AgentProcess,
    FakeOllamaProcess,
    ServerProcess,
    start_together,
    wait_until,
)

CLIENT_ID = "bench-agent"
STARTUP_S = 15.0  # excluded from the CPU average: imports, detection, registration
SAMPLE_EVERY_S = 1.0
TICKS = os.sysconf("SC_CLK_TCK")
AGENT_ROUTE = re.compile(
    r'^obt_request_duration_seconds_count\{method="(\w+)",route="((?:/api/v1)?/agents[^"]*)",'
    r'status="(\d+)"\} ([0-9.e+]+)$',
    re.MULTILINE,
)


class QuietAgent(AgentProcess):
    """The agent as a service runs it: no `-v` (which logs every heartbeat)."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "agent", "run"]


@dataclass
class Samples:
    """(seconds since start, RSS in MB, CPU seconds) of one process."""

    pid: int
    started: float
    rows: list[tuple[float, float, float]] = field(default_factory=list)

    def take(self) -> None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text(encoding="utf-8")
            stat = Path(f"/proc/{self.pid}/stat").read_text(encoding="utf-8")
        except OSError:
            return  # it has exited
        rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        # Fields after the command name (which may hold spaces) start at field 3 (state).
        fields = stat.rsplit(")", 1)[1].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        self.rows.append((time.monotonic() - self.started, rss_kb / 1024, cpu_s))

    def peak_mb(self) -> float:
        return max(r[1] for r in self.rows)

    def final_mb(self) -> float:
        return self.rows[-1][1]

    def cpu_percent(self, after_s: float) -> float:
        """Average CPU (% of one core) from `after_s` to the last sample."""
        steady = [r for r in self.rows if r[0] >= after_s]
        (t0, _, c0), (t1, _, c1) = steady[0], steady[-1]
        return 100 * (c1 - c0) / (t1 - t0)

    def _at(self, t: float) -> tuple[float, float, float]:
        return next((r for r in self.rows if r[0] >= t), self.rows[-1])

    def cpu_at(self, t: float) -> float:
        return self._at(t)[2]

    def rss_at(self, t: float) -> float:
        return self._at(t)[1]

    def cpu_total_s(self) -> float:
        return self.rows[-1][2]


def agent_requests(server: ServerProcess) -> dict[str, float]:
    """Requests to the agent routes so far, by "METHOD route status"."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    return {f"{m} {r} {s}": float(n) for m, r, s, n in AGENT_ROUTE.findall(text)}


def client_events(server: ServerProcess) -> list[dict[str, Any]]:
    """Every event of the benchmark agent's stream, oldest first."""
    events: list[dict[str, Any]] = []
    after = 0
    with server.client() as http:
        while True:
            page = http.get(
                "/events", params={"stream": f"client-{CLIENT_ID}", "after": after, "limit": 1000}
            )
            page.raise_for_status()
            body = page.json()
            events += body["items"]
            if body["next_after"] is None:
                return events
            after = body["next_after"]


def registered(server: ServerProcess) -> bool:
    try:
        return httpx.get(f"{server.api_url}/clients/{CLIENT_ID}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["recorded_at"]).timestamp()


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    keys = sorted(set(after) | set(before))
    return {
        k: int(after.get(k, 0) - before.get(k, 0))
        for k in keys
        if after.get(k, 0) > before.get(k, 0)
    }


def run(args: argparse.Namespace, tmp: Path) -> None:
    duration = args.minutes * 60
    load_before = os.getloadavg()
    ollama = FakeOllamaProcess(tmp / "logs")
    server = ServerProcess(
        tmp / "data",
        interval_s=args.interval,
        timeout_s=3 * args.interval,
        tick_s=1.0,
        log_dir=tmp / "logs",
        env={"OBT_LOG_LEVEL": "warning"},
    )
    start_together(ollama, server)
    agent = QuietAgent(
        tmp / "logs",
        server_url=server.base_url,
        ollama_url=ollama.base_url,
        enrollment_token=server.enrollment_token,
        client_id=CLIENT_ID,
        env={"OBT_AGENT_TRANSPORT": args.transport},
    )
    baseline: subprocess.Popen[bytes] | None = None
    try:
        # A few models, one of them loaded, before the agent first looks.
        ollama.add_model("mistral:7b", size=4_113_301_824, family="llama", parameter_size="7.2B")
        ollama.control("POST", "/load", {"name": "llama3.2:3b"})
        baseline = subprocess.Popen(
            [sys.executable, "-c", f"import asyncio; asyncio.run(asyncio.sleep({duration + 60}))"],
            stdin=subprocess.DEVNULL,
        )
        agent.start()
        started = time.monotonic()
        watched = Samples(agent.pid, started)
        bare = Samples(baseline.pid, started)
        wait_until(
            lambda: registered(server),
            30,
            lambda: f"the agent did not register\n{agent.output(30)}",
        )
        print(f"agent registered {time.monotonic() - started:.1f} s after start", flush=True)

        changed = False
        steady_requests: dict[str, float] = {}
        changed_at = before_change = 0.0
        requests_before_change: dict[str, float] = {}
        while (elapsed := time.monotonic() - started) < duration:
            watched.take()
            bare.take()
            agent.check_alive()
            if not steady_requests and elapsed >= STARTUP_S:
                steady_requests = agent_requests(server)
            if not changed and elapsed >= duration / 2:
                requests_before_change = agent_requests(server)
                before_change = time.time()
                ollama.add_model("phi3:mini", size=2_176_178_913, family="phi3")
                changed_at = elapsed
                changed = True
                print(f"model phi3:mini added on the fake Ollama at {elapsed:.0f} s", flush=True)
            time.sleep(SAMPLE_EVERY_S)
        requests_end = agent_requests(server)
        events = client_events(server)
    finally:
        code = agent.stop()
        if baseline is not None:
            baseline.kill()
            baseline.wait()
        server.stop()
        ollama.stop()

    report(args, watched, bare, events, before_change, changed_at, load_before, code)
    reports = model_reports(agent)
    print(
        f"  model reports (agent log): {len(reports)}; after the change: "
        f"{sum(1 for t in reports if t >= before_change)}"
    )
    channels = [e for e in events if e["type"] == "ChannelOpened"]
    print(f"  transport {args.transport}: channels opened {len(channels)}")
    print(f"  agent requests, whole run: {_fmt(requests_end)}")
    print(
        f"  agent requests after {STARTUP_S:.0f} s "
        f"({(watched.rows[-1][0] - STARTUP_S) / args.interval:.1f} intervals): "
        f"{_fmt(_delta(requests_end, steady_requests))}"
    )
    print(
        f"  model reports in the first half: "
        f"{_models(_delta(requests_before_change, steady_requests))}; "
        f"after the change at {changed_at:.0f} s: "
        f"{_models(_delta(requests_end, requests_before_change))}"
    )


def model_reports(agent: AgentProcess) -> list[float]:
    """When the agent logged each model report it sent (either transport), as Unix times."""
    times = []
    for path in agent.logs:
        for line in path.read_text(errors="replace").splitlines():
            if "event=models_reported" in line and (found := re.search(r"ts=(\S+)", line)):
                times.append(datetime.fromisoformat(found.group(1)).timestamp())
    return times


def _fmt(counts: dict[str, float] | dict[str, int]) -> str:
    return ", ".join(f"{k} x{v:g}" for k, v in counts.items()) or "none"


def _models(counts: dict[str, int]) -> int:
    return sum(v for k, v in counts.items() if k.startswith("PUT ") and "/models" in k)


def report(
    args: argparse.Namespace,
    watched: Samples,
    bare: Samples,
    events: list[dict[str, Any]],
    before_change: float,
    changed_at: float,
    load_before: tuple[float, float, float],
    code: int,
) -> None:
    load_after = os.getloadavg()
    elapsed = watched.rows[-1][0]
    print()
    print(
        f"agent footprint, {args.minutes:g} min, heartbeat interval {args.interval:g} s, "
        f"{os.cpu_count()} cores (load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after)"
    )
    print(f"  {'':34s} {'agent':>8s} {'bare asyncio':>13s} {'agent - bare':>13s}")
    for label, a, b in (
        ("peak RSS (MB)", watched.peak_mb(), bare.peak_mb()),
        ("final RSS (MB)", watched.final_mb(), bare.final_mb()),
        (
            f"CPU after {STARTUP_S:.0f} s (% of one core)",
            watched.cpu_percent(STARTUP_S),
            bare.cpu_percent(STARTUP_S),
        ),
        (
            f"CPU in the first {STARTUP_S:.0f} s (s)",
            watched.cpu_at(STARTUP_S),
            bare.cpu_at(STARTUP_S),
        ),
        ("CPU, whole run (s)", watched.cpu_total_s(), bare.cpu_total_s()),
    ):
        print(f"  {label:34s} {a:8.2f} {b:13.2f} {a - b:13.2f}")
    print(
        f"  agent RSS growth after {STARTUP_S:.0f} s: "
        f"{watched.final_mb() - watched.rss_at(STARTUP_S):+.1f} MB"
    )
    heartbeats = [_at(e) for e in events if e["type"] == "HeartbeatReceived"]
    gaps = [b - a for a, b in pairwise(heartbeats)]
    print(
        f"  heartbeats recorded: {len(heartbeats)} in {elapsed:.0f} s "
        f"({len(heartbeats) * args.interval / elapsed:.2f} per interval); gaps "
        + (f"{min(gaps):.2f} - {max(gaps):.2f} s" if gaps else "n/a")
    )
    added = [e["data"]["name"] for e in events if e["type"] == "ModelAdded"]
    added_after = [
        e["data"]["name"] for e in events if e["type"] == "ModelAdded" and _at(e) >= before_change
    ]
    print(f"  ModelAdded events: {len(added)}; after the change: {added_after}")
    print(f"  agent exit code on SIGTERM: {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--interval", type=float, default=10.0, help="heartbeat interval, s")
    parser.add_argument(
        "--transport", choices=("auto", "http"), default="auto", help="OBT_AGENT_TRANSPORT"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs) afterwards")
    args = parser.parse_args()
    if args.keep:
        tmp = Path(tempfile.mkdtemp(prefix="obt-agent-bench-"))
        print(f"work dir: {tmp}")
        run(args, tmp)
    else:
        with tempfile.TemporaryDirectory(prefix="obt-agent-bench-") as name:
            run(args, Path(name))


if __name__ == "__main__":
    main()
