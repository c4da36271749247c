"""How fast the dashboard's fleet overview renders in Chromium against the real server.

    python -m bench.dashboard_bench [--clients 1000 ...] [--runs 5]

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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.history import write_history
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
        )
    )


def list_clients_ms(server: ServerProcess, times: int = 20) -> tuple[float, int]:
    """Median time of GET /clients from Python (keep-alive), and the body size."""
    durations = []
    size = 0
    with httpx.Client(base_url=server.api_url, timeout=30) as http:
        for _ in range(times):
            t0 = time.perf_counter()
            response = http.get("/clients")
            response.raise_for_status()
            durations.append(1000 * (time.perf_counter() - t0))
            size = len(response.content)
    return statistics.median(durations), size


def measure(clients: int, runs: int, tmp: Path) -> dict[str, Any]:
    data_dir = tmp / f"fleet-{clients}"
    t0 = time.perf_counter()
    events = fill(data_dir, clients)
    print(f"{clients} clients: {events:,} events written in {time.perf_counter() - t0:.1f} s")
    server = ServerProcess(
        data_dir,
        interval_s=10,
        timeout_s=3600,
        tick_s=1,
        log_dir=tmp / f"logs-{clients}",
        env={"OBT_LOG_LEVEL": "warning"},
    )
    with server:
        wait_until(
            lambda: (
                len(httpx.get(f"{server.api_url}/clients", timeout=30).json()["items"]) == clients
            ),
            120,
            f"the server did not list {clients} clients",
            interval=0.5,
        )
        api_ms, api_bytes = list_clients_ms(server)
        load = os.getloadavg()[0]
        out = subprocess.run(
            [
                "node",
                str(RENDER_SCRIPT),
                "--url",
                server.base_url,
                "--clients",
                str(clients),
                "--runs",
                str(runs),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if out.returncode != 0:
        raise SystemExit(f"{RENDER_SCRIPT.name} failed ({out.returncode}):\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(api_ms=api_ms, api_bytes=api_bytes, load=load)
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
        + f" {'GET /clients, py':>16s} {'body KB':>8s} {'load':>5s}"
    )
    for r in results:
        runs = r["runs"]
        painted = [x["painted"] for x in runs]
        print(
            f"  {r['clients']:7,d} {statistics.median(painted):8.0f} {min(painted):5.0f} "
            f"{max(painted):5.0f} "
            + " ".join(f"{_median(runs, key):{max(6, len(name))}.0f}" for name, key in PHASES)
            + f" {r['api_ms']:16.1f} {r['api_bytes'] / 1024:8.0f} {r['load']:5.2f}"
        )
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
    args = parser.parse_args()
    if not STATIC_INDEX.exists():
        raise SystemExit(f"no dashboard build at {STATIC_INDEX}: run `pnpm --dir frontend build`")
    with tempfile.TemporaryDirectory(prefix="obt-dashboard-bench-") as name:
        results = [measure(n, args.runs, Path(name)) for n in args.clients]
    report(results)


if __name__ == "__main__":
    main()
