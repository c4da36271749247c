"""How fast the dashboard's fleet overview renders in Chromium against the real server.

    python -m bench.dashboard_bench [--clients 1000 ...] [--runs 5] [--live-seconds 60]

For each fleet size: a SQLite log pre-filled with N live clients (registration, models, recent
heartbeats; bench/history.py), the real server (`obt serve`, heartbeat interval 10 s, timeout
1 h so nobody times out during the run), then bench/dashboard_render.mjs drives Debian's
Chromium through @playwright/test from frontend/node_modules: `--runs` first visits (a fresh
context each, empty cache), timed in the page from navigation start until the "Clients" count
card reads N and the table holds its first page (min(N, 100) rows) with a non-empty first row
("dom"), and until the frame after that ("painted"). Also: the JavaScript that first visit
loaded (raw, gzip -9, and the bytes on the wire), and GET /clients timed from Python (no
browser) as the server's share. Targets: JS <= 250 KB gzip; 1,000 clients render in <= 1 s.
Needs a built dashboard (`pnpm --dir frontend build`) and /usr/bin/chromium.

At fleet scale (issue 17): every client is registered with a known secret, and while the
browser works a load process (wrk, as bench/server_bench.py drives it) sends heartbeats for
every client in turn, as fast as the server takes them with `--load-connections` open. Then:
`GET /clients` first page (`?limit=100&sort=status`, gzip) timed from Python `--api-requests`
times, idle and under that load (p50/p99); the first visits; and with `--live-seconds`, one
visit kept open that long: long tasks, live-feed bytes per second, JS heap (see
bench/dashboard_render.mjs). Targets at 100,000 clients: first paint <= 1.5 s, no task over
100 ms, <= 50 KB/s of live feed, first page p99 <= 30 ms, heap <= 100 MB. Needs wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.history import bench_secret, bench_session, write_history
from bench.server_bench import WRK_SCRIPT
from tests.support.processes import REPO_ROOT, ServerProcess, wait_until

RENDER_SCRIPT = REPO_ROOT / "bench" / "dashboard_render.mjs"
STATIC_INDEX = REPO_ROOT / "obt" / "static" / "index.html"
PER_CLIENT = 10
STEP_S = 10


def fill(data_dir: Path, clients: int) -> int:
    """N clients whose last heartbeat is at most ~20 s old when the server starts."""
    data_dir.mkdir(parents=True)
    start = datetime.now(UTC) - timedelta(seconds=STEP_S * (PER_CLIENT - 4))
    return asyncio.run(
        write_history(
            data_dir / "obt.sqlite3",
            clients=clients,
            per_client=PER_CLIENT,
            start=start,
            step_s=STEP_S,
            stop=False,
            with_secrets=True,
        )
    )


FIRST_PAGE = "/clients?limit=100&sort=status"


def first_page_ms(server: ServerProcess, times: int) -> dict[str, float]:
    """GET /clients first page from Python (keep-alive, gzip): p50, p99, wire bytes."""
    durations = []
    size = 0
    with httpx.Client(
        base_url=server.api_url, timeout=30, headers={"Accept-Encoding": "gzip"}
    ) as http:
        for _ in range(times):
            t0 = time.perf_counter()
            response = http.get(FIRST_PAGE)
            response.raise_for_status()
            durations.append(1000 * (time.perf_counter() - t0))
            size = int(response.headers.get("content-length", len(response.content)))
    durations.sort()
    return {
        "p50": statistics.median(durations),
        "p99": durations[min(len(durations) - 1, int(len(durations) * 0.99))],
        "max": durations[-1],
        "wire_bytes": float(size),
    }


@contextmanager
def heartbeat_load(
    server: ServerProcess, clients: int, connections: int, seconds: int, tmp: Path
) -> Iterator[dict[str, float]]:
    """wrk sending every client's heartbeats in turn (its secret, its session, seq upwards)
    for `seconds`; the dict gets wrk's figures when the block ends."""
    agents = tmp / f"agents-{clients}.txt"
    agents.write_text(
        "".join(
            f"{c} bench-{c:05d} {bench_secret(c)} {bench_session(c)}\n" for c in range(clients)
        ),
        encoding="utf-8",
    )
    script = tmp / f"load-{clients}.lua"
    lua = WRK_SCRIPT.replace("NTHREADS", "1").replace("AGENTS", str(agents))
    script.write_text(lua.replace("seq = 0}", f"seq = {10**6}}}"), "utf-8")
    process = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), server.base_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    figures: dict[str, float] = {}
    try:
        yield figures
    finally:
        process.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
        out, _ = process.communicate(timeout=30)
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        total = re.search(r"(\d+) requests in", out)
        figures.update(
            rate=float(rate.group(1)) if rate else float("nan"),
            requests=float(total.group(1)) if total else float("nan"),
            non_2xx=float(errors.group(1)) if errors else 0.0,
        )


def summary_total(server: ServerProcess) -> int:
    return int(httpx.get(f"{server.api_url}/fleet/summary", timeout=60).json()["total"])


def measure(clients: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    data_dir = tmp / f"fleet-{clients}"
    t0 = time.perf_counter()
    if (data_dir / "obt.sqlite3").exists():  # --work-dir kept from an earlier run
        events = 0
        print(f"{clients} clients: the log in {data_dir} again")
    else:
        events = fill(data_dir, clients)
        print(f"{clients} clients: {events:,} events written in {time.perf_counter() - t0:.1f} s")
    server = ServerProcess(
        data_dir,
        interval_s=10,
        timeout_s=3600,
        tick_s=1,
        log_dir=tmp / f"logs-{clients}",
        env={"OBT_LOG_LEVEL": "warning", "OBT_DASHBOARD_DIR": str(args.dashboard_dir)},
    )
    t0 = time.perf_counter()
    server.start(timeout=1800)  # the server answers once it has caught up with the log
    with server:
        wait_until(
            lambda: summary_total(server) == clients,
            1800,
            f"the server did not count {clients} clients",
            interval=1,
        )
        print(f"  server caught up in {time.perf_counter() - t0:.1f} s")
        api_idle = first_page_ms(server, args.api_requests)
        result: dict[str, Any] = {"api_idle": api_idle}
        command = [
            "node",
            str(RENDER_SCRIPT),
            "--url",
            server.base_url,
            "--clients",
            str(clients),
            "--runs",
            str(args.runs),
            "--live-seconds",
            str(args.live_seconds),
        ]
        budget = 120 + args.live_seconds + 15 * args.runs
        with heartbeat_load(server, clients, args.load_connections, budget, tmp) as load:
            time.sleep(3)  # the load is flowing before anything is timed
            result["api_load"] = first_page_ms(server, args.api_requests)
            loadavg = os.getloadavg()[0]
            out = subprocess.run(
                command, capture_output=True, text=True, timeout=600 + budget, check=False
            )
        head = httpx.get(f"{server.api_url}/health", timeout=30).json()
    if out.returncode != 0:
        raise SystemExit(f"{RENDER_SCRIPT.name} failed ({out.returncode}):\n{out.stderr}")
    result.update(json.loads(out.stdout.strip().splitlines()[-1]))
    result.update(load=loadavg, heartbeats=load, events=events, health=head)
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs if r[key] is not None)


PHASES = (
    ("html", "html_ms"),
    ("JS done", "js_done_ms"),
    ("FCP", "first_contentful_paint_ms"),
    ("/clients sent", "clients_request_start_ms"),
    ("/clients done", "clients_response_end_ms"),
    ("dom", "dom"),
)


def report(results: list[dict[str, Any]]) -> None:
    print()
    print(
        "fleet overview, first visit (fresh context), median of "
        f"{len(results[0]['runs'])} runs; ms from navigation start"
    )
    print(
        f"  {'clients':>7s} {'painted':>8s} {'min':>5s} {'max':>5s} "
        + " ".join(f"{name:>{max(6, len(name))}s}" for name, _ in PHASES)
        + f" {'load':>5s}"
    )
    for r in results:
        runs = r["runs"]
        painted = [x["painted"] for x in runs]
        print(
            f"  {r['clients']:7,d} {statistics.median(painted):8.0f} {min(painted):5.0f} "
            f"{max(painted):5.0f} "
            + " ".join(f"{_median(runs, key):{max(6, len(name))}.0f}" for name, key in PHASES)
            + f" {r['load']:5.2f}"
        )
    print()
    print(f"GET /api/v1{FIRST_PAGE} from Python, ms (gzip; wire KB):")
    for r in results:
        idle, busy = r["api_idle"], r["api_load"]
        print(
            f"  {r['clients']:7,d} idle p50 {idle['p50']:.1f} p99 {idle['p99']:.1f} "
            f"max {idle['max']:.1f}; under heartbeat load p50 {busy['p50']:.1f} "
            f"p99 {busy['p99']:.1f} max {busy['max']:.1f}; {idle['wire_bytes'] / 1024:.1f} KB"
        )
    print()
    print("heartbeat load (wrk, every client in turn) while the browser worked:")
    for r in results:
        hb = r["heartbeats"]
        print(
            f"  {r['clients']:7,d} {hb['rate']:,.0f} heartbeats/s "
            f"({hb['requests']:,.0f} requests, {hb['non_2xx']:,.0f} non-2xx)"
        )
    if any(r.get("live") for r in results):
        print()
        print("a minute on the fleet page during live updates:")
        for r in results:
            live = r.get("live")
            if not live:
                continue
            print(
                f"  {r['clients']:7,d} {live['seconds']:.0f} s: long tasks > 100 ms: "
                f"{live['long_tasks_over_100ms']} (> 50 ms: {live['long_tasks_over_50ms']}, "
                f"longest {live['longest_task_ms']:.0f} ms); live feed "
                f"{live['live_wire_bytes_per_s'] / 1024:.1f} KB/s on the wire, "
                f"{live['live_message_bytes_per_s'] / 1024:.1f} KB/s of messages "
                f"({live['live_messages_per_s']:.1f} messages/s); JS heap "
                f"{live['heap_used_mb']:.1f} MB ({live['heap_used_after_gc_mb']:.1f} MB after GC); "
                f"rows {live['rows']}"
            )
            print(f"          live URL: {live['live_urls'][-1] if live['live_urls'] else None}")
    first = results[0]["runs"][0]
    print(
        f"JavaScript on first load: {first['js_files']} files, "
        f"{first['js_gzip_bytes'] / 1024:.1f} KB gzip -9 "
        f"({first['js_raw_bytes'] / 1024:.1f} KB raw; "
        f"{first['js_wire_bytes'] / 1024:.1f} KB on the wire, "
        f"content-encoding {first['js_content_encoding']})"
    )
    print(
        "first row inside the viewport: "
        + str(all(x["first_row_in_viewport"] for r in results for x in r["runs"]))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--live-seconds", type=int, default=60)
    parser.add_argument("--load-connections", type=int, default=8)
    parser.add_argument("--api-requests", type=int, default=500)
    parser.add_argument(
        "--dashboard-dir", type=Path, default=STATIC_INDEX.parent, help="a dashboard build"
    )
    parser.add_argument(
        "--work-dir", type=Path, help="keep the logs here (a log already there is used again)"
    )
    parser.add_argument("--json", type=Path, help="write every figure here as well")
    args = parser.parse_args()
    if not (args.dashboard_dir / "index.html").exists():
        raise SystemExit(
            f"no dashboard build in {args.dashboard_dir}: run `pnpm --dir frontend build`"
        )
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the heartbeat load: apt-get install wrk")
    results = []
    with tempfile.TemporaryDirectory(prefix="obt-dashboard-bench-") as name:
        work = args.work_dir or Path(name)
        for n in args.clients:
            results.append(measure(n, args, work))
            report(results[-1:])  # each size as soon as it is measured
            if args.json:
                args.json.write_text(json.dumps(results, indent=1), "utf-8")
    if len(results) > 1:
        report(results)


if __name__ == "__main__":
    main()
