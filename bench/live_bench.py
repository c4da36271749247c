"""What the live feed sends one subscriber while the fleet heartbeats as fast as it can.

    python -m bench.live_bench [--clients 1000 10000 ...] [--seconds 30] [--load-connections 64]

For each fleet size: a SQLite log pre-filled with N live clients (bench/history.py, as
bench/dashboard_bench.py does), the real server, and wrk sending every client's heartbeats in
turn. Meanwhile one subscriber of each kind reads `GET /api/v1/live` for `--seconds`:
- plain: no `watch` (every client, model and timeline change; the feed before issue 17);
- fleet page: `watch=counts,timeline,client:<the first 100 clients>` (what the dashboard's
  fleet page asks for);
- client page: `watch=counts,client:<one>,timeline:<one>`.
Reported per subscriber: bytes/s and messages/s received, resets, and the heartbeats/s the
server took meanwhile. The dashboard's target (issue 17): <= 50 KB/s into one tab.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.dashboard_bench import fill, heartbeat_load
from tests.support.processes import ServerProcess, wait_until

PAGE_ROWS = 100


class FeedCounter:
    """Reads one /live stream on a thread, counting bytes and messages by event type."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bytes = 0
        self.events: dict[str, int] = {}
        self.started = 0.0
        self.stopped = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        self.started = time.perf_counter()
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=60)) as client,
            client.stream("GET", self.url) as response,
        ):
            response.raise_for_status()
            for line in response.iter_lines():
                self.bytes += len(line) + 1
                if line.startswith("event:"):
                    kind = line[6:].strip()
                    self.events[kind] = self.events.get(kind, 0) + 1
                if self._stop.is_set():
                    break
        self.stopped = time.perf_counter()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=90)  # ends at the next line: a message or the 15 s ping
        seconds = (self.stopped or time.perf_counter()) - self.started
        messages = sum(self.events.values())
        return {
            "seconds": seconds,
            "bytes_per_s": self.bytes / seconds,
            "messages_per_s": messages / seconds,
            "events": dict(self.events),
        }


def subscriber_urls(server: ServerProcess, clients: int) -> dict[str, str]:
    rows = ",".join(f"client:bench-{c:05d}" for c in range(min(clients, PAGE_ROWS)))
    one = "bench-00000"
    live = f"{server.api_url}/live"
    return {
        "plain": live,
        "fleet page": f"{live}?watch=counts,timeline,{rows}",
        "client page": f"{live}?watch=counts,client:{one},timeline:{one}",
    }


def measure(clients: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    data_dir = tmp / f"fleet-{clients}"
    events = fill(data_dir, clients)
    server = ServerProcess(
        data_dir,
        interval_s=10,
        timeout_s=3600,
        tick_s=1,
        log_dir=tmp / f"logs-{clients}",
        env={"OBT_LOG_LEVEL": "warning"},
    )
    server.start(timeout=1800)  # catching up a big log comes before serving
    try:
        wait_until(
            lambda: all(
                p["lag"] == 0
                for p in httpx.get(f"{server.api_url}/health", timeout=60).json()["projections"]
            ),
            1800,
            "the server did not catch up",
            interval=1,
        )
        with heartbeat_load(server, clients, args.load_connections, args.seconds + 30, tmp) as load:
            time.sleep(3)  # the load is flowing before anything is counted
            counters = {
                name: FeedCounter(url) for name, url in subscriber_urls(server, clients).items()
            }
            for counter in counters.values():
                counter.start()
            time.sleep(args.seconds)
            feeds = {name: counter.stop() for name, counter in counters.items()}
    finally:
        server.stop()
    return {"clients": clients, "events": events, "heartbeats": load, "feeds": feeds}


def report(result: dict[str, Any], seconds: int) -> None:
    beats = result["heartbeats"]
    print(
        f"{result['clients']:,} clients ({result['events']:,} events in the log), wrk "
        f"{beats['rate']:,.0f} heartbeats/s ({beats['non_2xx']:.0f} non-2xx), "
        f"{seconds} s per subscriber:"
    )
    for name, feed in result["feeds"].items():
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(feed["events"].items()))
        print(
            f"  {name:12} {feed['bytes_per_s'] / 1024:8.1f} KB/s "
            f"{feed['messages_per_s']:8.1f} messages/s   ({kinds})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live_bench", description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--load-connections", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="obt-live-bench-") as tmp:
        for clients in args.clients:
            report(measure(clients, args, Path(tmp)), args.seconds)


if __name__ == "__main__":
    main()
