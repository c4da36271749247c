"""`make bench` / `python -m bench`: every benchmark in turn, each printing its own figures.

Run on a quiet machine; docs/benchmarks.md records the figures with the command that made
them. One benchmark alone: `python -m bench.<name> --help`.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    ("event store: append throughput", ["bench.store_bench"]),
    ("projections: rebuild of 1,000,000 events", ["bench.rebuild_bench"]),
    ("HTTP server: ingest, reads, memory", ["bench.server_bench"]),
    ("agent footprint", ["bench.agent_footprint", "--minutes", "2"]),
    ("dashboard render", ["bench.dashboard_bench", "--clients", "1000", "--runs", "3"]),
    ("alerts: notices under load", ["bench.alerts_bench"]),
]


def main() -> int:
    failed = []
    for title, module in BENCHMARKS:
        print(f"\n== {title}: python -m {' '.join(module)}", flush=True)
        if subprocess.run([sys.executable, "-m", *module], check=False).returncode != 0:
            failed.append(title)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
