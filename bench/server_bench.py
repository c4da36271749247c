"""HTTP speed of the real server, measured with wrk against a bare FastAPI baseline in one run.

    python -m bench.server_bench [--agents 1000] [--connections 32] [--seconds 15] [--rounds 3]

1. Heartbeat ingest: `agents` registered agents, `connections` concurrent requests, every
   request a valid heartbeat (its own client, secret and next seq). The same load against a
   bare FastAPI endpoint that parses the same body and answers the same shape: the ratio is
   OBT's cost of recording every heartbeat as an event and projecting it.
2. Read endpoints with 1,000 clients and 7 days of history: p50/p99 per endpoint.
3. Server RSS with 10,000 registered clients.
Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.history import write_history

ENROLL = "bench-enrollment-token-0123456789"
ADMIN = "bench-admin-token-0123456789abcdef"
WRK_SCRIPT = r"""
local agents = {}
local counter = 0
local nthreads = NTHREADS
local tid = 0
local index = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
  for line in io.lines("AGENTS") do
    local i, id, secret, session = line:match("(%d+) (%S+) (%S+) (%S+)")
    if tonumber(i) % nthreads == tid then
      table.insert(agents, {id = id, secret = secret, session = session, seq = 0})
    end
  end
end
function request()
  index = index % #agents + 1
  local a = agents[index]
  a.seq = a.seq + 1
  local body = '{"seq":' .. a.seq .. ',"session_id":"' .. a.session ..
    '","sent_at":"2026-11-27T12:00:00Z","ollama":{"reachable":true,"version":"0.5.7",' ..
    '"latency_ms":2.5,"error":null},"models_digest":"' .. string.rep("a", 64) .. '"}'
  return wrk.format("POST", "/api/v1/agents/" .. a.id .. "/heartbeats",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. a.secret}, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {deadline_s} s")


@contextmanager
def process(args: list[str], env: dict[str, str], url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(url)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def obt_server(data_dir: Path, port: int) -> tuple[list[str], dict[str, str], str]:
    env = {
        **os.environ,
        "OBT_PORT": str(port),
        "OBT_DATA_DIR": str(data_dir),
        "OBT_ENROLLMENT_TOKEN": ENROLL,
        "OBT_ADMIN_TOKEN": ADMIN,
        "OBT_RATE_LIMIT_PER_MIN": "100000000",
        "OBT_LOG_LEVEL": "warning",
    }
    return [sys.executable, "-m", "obt.cli", "serve"], env, f"http://127.0.0.1:{port}"


def wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    return {
        "rate": rate,
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "p50_ms": _ms(lat.get("50", "0ms")),
        "p99_ms": _ms(lat.get("99", "0ms")),
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def register(base: str, count: int) -> list[tuple[str, str, str]]:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> tuple[str, str, str]:
            cid, session = f"agent-{i:05d}", str(uuid.uuid4())
            async with sem:
                r = await client.post(
                    "/api/v1/agents/register",
                    json={
                        "client_id": cid,
                        "hostname": cid,
                        "session_id": session,
                        "ollama": {"installed": True, "reachable": True},
                    },
                    headers={"Authorization": f"Bearer {ENROLL}"},
                )
            r.raise_for_status()
            return cid, r.json()["client_secret"], session

        return await asyncio.gather(*(one(i) for i in range(count)))


def ingest(args: argparse.Namespace, tmp: Path) -> None:
    """Bare and OBT loaded in turn, `rounds` times, both servers up throughout: on a shared
    2-core machine one pair of runs can differ by 10 %, so the figure is the median ratio."""
    bare_agents, obt_agents = tmp / "bare-agents.txt", tmp / "agents.txt"
    bare_port = free_port()
    bare = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--port",
        str(bare_port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    cmd, env, base = obt_server(tmp / "ingest", free_port())
    rounds: list[tuple[dict[str, float], dict[str, float]]] = []
    with (
        process(bare, {**os.environ}, f"http://127.0.0.1:{bare_port}/health"),
        process(cmd, env, f"{base}/api/v1/health"),
    ):
        fake = [(f"agent-{i:05d}", "x" * 43, str(uuid.uuid4())) for i in range(args.agents)]
        _write_agents(bare_agents, fake)
        _write_agents(obt_agents, asyncio.run(register(base, args.agents)))
        for n in range(args.rounds):
            pair = []
            for url, agents in ((f"http://127.0.0.1:{bare_port}", bare_agents), (base, obt_agents)):
                script = tmp / f"heartbeat-{n}.lua"
                # Each round's seqs continue where the last round's ended: no stale seqs.
                lua = WRK_SCRIPT.replace("NTHREADS", "2").replace("AGENTS", str(agents))
                script.write_text(lua.replace("seq = 0}", f"seq = {n * 10**7}}}"), "utf-8")
                pair.append(wrk(url, script, args.connections, args.seconds))
            rounds.append((pair[0], pair[1]))
        store = httpx.get(f"{base}/api/v1/health", timeout=10).json()["store"]
    print(
        f"heartbeat ingest, {args.agents} agents, {args.connections} concurrent, "
        f"{args.seconds} s per run, {args.rounds} rounds of bare then OBT (wrk):"
    )
    ratios = []
    for n, (bare_result, obt) in enumerate(rounds, start=1):
        ratios.append(obt["rate"] / bare_result["rate"])
        print(
            f"  round {n}: bare FastAPI {bare_result['rate']:,.0f} req/s "
            f"(p99 {bare_result['p99_ms']:.1f} ms) | OBT {obt['rate']:,.0f} req/s "
            f"(p50 {obt['p50_ms']:.1f} ms, p99 {obt['p99_ms']:.1f} ms, "
            f"non-2xx {obt['non_2xx']:.0f}) | ratio {ratios[-1]:.2f}"
        )
    print(
        f"  ratio OBT / bare: median {statistics.median(ratios):.2f} "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}); "
        f"worst OBT p99 {max(o['p99_ms'] for _, o in rounds):.1f} ms; "
        f"log head {store['head']:,}"
    )
    if details := store.get("details"):
        print(f"  store: {details}")


def _write_agents(path: Path, agents: list[tuple[str, str, str]]) -> None:
    path.write_text(
        "".join(
            f"{i} {cid} {secret} {session}\n" for i, (cid, secret, session) in enumerate(agents)
        ),
        encoding="utf-8",
    )


def reads(args: argparse.Namespace, tmp: Path) -> None:
    data = tmp / "reads"
    data.mkdir()
    now = datetime.now(UTC)
    count = asyncio.run(
        # Hourly heartbeats with Ollama outages and timeouts: a week of status history.
        write_history(
            data / "obt.sqlite3",
            clients=1000,
            per_client=7 * 24,
            start=now - timedelta(days=7),
            step_s=3600,
            stop=True,
        )
    )
    cmd, env, base = obt_server(data, free_port())
    endpoints = {
        "GET /clients": "/api/v1/clients",
        "GET /clients/{id}": "/api/v1/clients/bench-00042",
        "GET /clients/{id}/uptime?bucket=hour": "/api/v1/clients/bench-00042/uptime?bucket=hour",
        "GET /clients/{id}/uptime?bucket=day": "/api/v1/clients/bench-00042/uptime?bucket=day",
        "GET /clients/{id}/timeline": "/api/v1/clients/bench-00042/timeline",
        "GET /timeline": "/api/v1/timeline",
        "GET /models": "/api/v1/models",
        "GET /events?limit=100": "/api/v1/events?limit=100&after=1000",
    }
    print(
        f"read endpoints, 1,000 clients, 7 days of history ({count:,} events), "
        f"{args.read_connections} concurrent, {args.read_seconds} s each (wrk):"
    )
    with process(cmd, env, f"{base}/api/v1/health") as proc:
        for name, path in endpoints.items():
            script = tmp / "get.lua"
            script.write_text(f'wrk.path = "{path}"\n', encoding="utf-8")
            r = wrk(base, script, args.read_connections, args.read_seconds)
            print(
                f"  {name:40s} {r['rate']:8,.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                f"p99 {r['p99_ms']:6.1f} ms  non-2xx {r['non_2xx']:.0f}"
            )
        print(f"  server RSS after the read load: {_rss_mb(proc.pid):.0f} MB")


def memory(args: argparse.Namespace, tmp: Path) -> None:
    data = tmp / "memory"
    data.mkdir()
    now = datetime.now(UTC)
    asyncio.run(
        write_history(
            data / "obt.sqlite3",
            clients=args.memory_clients,
            per_client=10,
            start=now - timedelta(hours=1),
            step_s=300,
            stop=True,
        )
    )
    cmd, env, base = obt_server(data, free_port())
    with process(cmd, env, f"{base}/api/v1/health") as proc:
        httpx.get(f"{base}/api/v1/clients", timeout=60).raise_for_status()
        rss = _rss_mb(proc.pid)
        print(f"server RSS with {args.memory_clients:,} registered clients: {rss:.0f} MB")


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="bare/OBT pairs for ingest")
    parser.add_argument("--read-seconds", type=int, default=5)
    parser.add_argument(
        "--read-connections", type=int, default=4, help="dashboard users reading at once"
    )
    parser.add_argument("--memory-clients", type=int, default=10_000)
    parser.add_argument("--only", choices=["ingest", "reads", "memory"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("ingest", ingest), ("reads", reads), ("memory", memory)):
            if args.only in (None, name):
                fn(args, Path(tmp))


if __name__ == "__main__":
    main()
