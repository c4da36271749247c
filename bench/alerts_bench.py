"""Alert notices under load: 1,000 clients, 100 of them going offline at once while the others
heartbeat at full speed (wrk). How long from each AlertFired to its webhook notice at a local
receiver, and heartbeat ingest with the alert rule against the same run without it.

    python -m bench.alerts_bench [--agents 1000] [--offline 100] [--seconds 30] [--rounds 2]

Each run has a fresh server (SQLite) with a 5 s heartbeat interval and a 15 s timeout: the
silent clients time out together about 15 s after registering, in the middle of the wrk run.
Runs alternate without and with the rule. Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.server_bench import (
    ADMIN,
    WRK_SCRIPT,
    _write_agents,
    free_port,
    obt_server,
    process,
    register,
    wrk,
)


class Receiver:
    """Records when each dedupe key first arrived (answers 200 at once)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrived: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = orjson.loads(body)["dedupe_key"]
                receiver.arrived.setdefault(key, time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def one_run(args: argparse.Namespace, tmp: Path, with_rule: bool, n: int) -> dict[str, Any]:
    cmd, env, base = obt_server(tmp / f"run-{n}-{with_rule}", free_port())
    env.update(OBT_HEARTBEAT_INTERVAL_S="5", OBT_HEARTBEAT_TIMEOUT_S="15")
    receiver = Receiver()
    try:
        with process(cmd, env, f"{base}/api/v1/health"):
            if with_rule:
                r = httpx.post(
                    f"{base}/api/v1/alerts/rules",
                    json={
                        "name": "offline",
                        "condition": {"kind": "status", "statuses": ["offline"]},
                        "notify": {
                            "webhooks": [
                                {"url": f"http://127.0.0.1:{receiver.port}/", "secret": "bench"}
                            ]
                        },
                    },
                    headers={"Authorization": f"Bearer {ADMIN}"},
                )
                r.raise_for_status()
            agents = asyncio.run(register(base, args.agents))
            # The last `offline` agents never heartbeat: they time out together.
            beating = tmp / f"agents-{n}-{with_rule}.txt"
            _write_agents(beating, agents[: args.agents - args.offline])
            script = tmp / f"heartbeat-{n}-{with_rule}.lua"
            lua = WRK_SCRIPT.replace("NTHREADS", "2").replace("AGENTS", str(beating))
            script.write_text(lua, "utf-8")
            load = wrk(base, script, args.connections, args.seconds)
            result: dict[str, Any] = {"load": load}
            if with_rule:
                deadline = time.monotonic() + 60
                while len(receiver.arrived) < args.offline and time.monotonic() < deadline:
                    time.sleep(0.2)
                fired = httpx.get(
                    f"{base}/api/v1/events", params={"type": "AlertFired", "limit": 1000}
                ).json()["items"]
                lags = [
                    receiver.arrived[e["data"]["dedupe_key"]]
                    - datetime.fromisoformat(e["recorded_at"]).timestamp()
                    for e in fired
                    if e["data"]["dedupe_key"] in receiver.arrived
                ]
                result.update(fired=len(fired), arrived=len(receiver.arrived), lags=lags)
            return result
    finally:
        receiver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--offline", type=int, default=100)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    without, with_ = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            without.append(one_run(args, Path(tmp), False, n))
            with_.append(one_run(args, Path(tmp), True, n))
    print(
        f"alerts under load: {args.agents} agents, {args.offline} go silent at once, "
        f"{args.connections} concurrent heartbeats for {args.seconds} s per run (wrk), "
        f"{args.rounds} rounds of without / with an offline rule and a webhook:"
    )
    for n, (a, b) in enumerate(zip(without, with_, strict=True), start=1):
        lags = sorted(b["lags"])
        print(
            f"  round {n}: without {a['load']['rate']:,.0f} req/s (p99 "
            f"{a['load']['p99_ms']:.1f} ms) | with {b['load']['rate']:,.0f} req/s (p99 "
            f"{b['load']['p99_ms']:.1f} ms) | fired {b['fired']}, notices {b['arrived']}, "
            f"fired -> received median {statistics.median(lags):.2f} s, max {lags[-1]:.2f} s"
        )
    rate = statistics.median(
        b["load"]["rate"] / a["load"]["rate"] for a, b in zip(without, with_, strict=True)
    )
    p99 = statistics.median(
        b["load"]["p99_ms"] / a["load"]["p99_ms"] for a, b in zip(without, with_, strict=True)
    )
    worst = max(max(b["lags"]) for b in with_)
    print(
        f"  with / without: rate x{rate:.2f}, p99 x{p99:.2f} (medians); "
        f"slowest notice {worst:.2f} s after its firing"
    )


if __name__ == "__main__":
    main()
