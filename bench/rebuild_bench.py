"""Rebuild speed: N events (a realistic fleet history) into every projection, on SQLite.

    python -m bench.rebuild_bench [--events 1000000] [--clients 1000]

Generates the history straight into the log (fast), then rebuilds in a fresh process so the
peak RSS printed is the rebuild's own. Also prints the raw stdlib-sqlite3 read rate of the
same rows in the same run, as the floor to compare against.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.history import write_history
from obt.bootstrap import make_codec, tune_gc
from obt.projections.runner import ProjectionRunner
from obt.store.sqlite import SQLiteStore


async def rebuild(path: Path) -> dict[str, float]:
    store = SQLiteStore(path, make_codec())
    await store.open()
    try:
        runner = ProjectionRunner(store)
        await runner.start()
        tune_gc()  # as `obt projections rebuild` does
        started = time.perf_counter()
        count = await runner.rebuild()
        seconds = time.perf_counter() - started
    finally:
        await store.close()
    # VmHWM, not ru_maxrss: the latter survives fork+exec and would report the parent's peak
    # (the generator held the whole history in memory).
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    rss_mb = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    return {"events": count, "seconds": seconds, "rate": count / seconds, "peak_rss_mb": rss_mb}


def raw_read_rate(path: Path) -> float:
    connection = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        rows = 0
        for _ in connection.execute("SELECT * FROM events ORDER BY position"):
            rows += 1
        return rows / (time.perf_counter() - started)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rebuild-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rebuild_only:
        print(json.dumps(asyncio.run(rebuild(args.rebuild_only))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "obt.sqlite3"
        started = time.perf_counter()
        asyncio.run(
            write_history(path, clients=args.clients, per_client=args.events // args.clients)
        )
        print(
            f"generated {args.events:,} events for {args.clients:,} clients "
            f"in {time.perf_counter() - started:.1f} s"
        )
        raw = raw_read_rate(path)
        out = subprocess.run(
            [sys.executable, "-m", "bench.rebuild_bench", "--rebuild-only", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"raw sqlite3 full scan (floor):  {raw:,.0f} rows/s")
    print(
        f"rebuild, all projections:       {result['rate']:,.0f} events/s "
        f"({result['events']:,} events in {result['seconds']:.1f} s), "
        f"{result['rate'] / raw:.2f} x the raw scan"
    )
    print(f"rebuild peak RSS:               {result['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
