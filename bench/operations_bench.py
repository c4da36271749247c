"""A fleet operation at scale: one model pulled onto N simulated hosts over the agent channel.

    python -m bench.operations_bench [--hosts 100] [--max-parallel 10] [--pull-s 10] [--json]

Starts a real `obt serve` (SQLite), registers N agents and opens one channel each (the
`websockets` client: hello, then heartbeats every 5 s). Each simulated agent answers a `command`
frame as the real agent does with Ollama's pull stream: a progress frame per phase ("pulling
manifest", "pulling <digest>", "verifying sha256 digest", "writing manifest", "success") and one a
second while the weights download (`--pull-s` seconds), then a `result` frame. Then
`POST /operations` (pull, every host, `--max-parallel`) and the operation is followed until it
finishes. Reported: the time it took, the most hosts seen running at once (asked every 0.2 s),
the operation's events in the log (`stream=operation-<id>`) in all and per host, and the rate
at which they were written. The simulated agents send no model report (the real agent's
ModelAdded events are not counted here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.server_bench import ADMIN, free_port, obt_server, process, register

DIGEST = "a" * 64
WEIGHTS = 2_000_000_000


class SimulatedAgent:
    """One host: a channel that beats and carries out pulls as Ollama's stream would go."""

    def __init__(self, ws_base: str, cid: str, secret: str, session: str, pull_s: float) -> None:
        self.url = f"{ws_base}/api/v1/agents/{cid}/channel"
        self.cid, self.secret, self.session, self.pull_s = cid, secret, session, pull_s
        self.commands = 0
        self.progress_sent = 0
        self.running: dict[str, asyncio.Task[None]] = {}

    async def run(self, ready: asyncio.Event, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.secret}"}
        async with websockets.connect(self.url, additional_headers=headers, max_size=None) as ws:
            hello = {"type": "hello", "protocol": 1, "session_id": self.session}
            await ws.send(json.dumps(hello))
            while "welcome" not in json.loads(await ws.recv()).get("type", ""):
                pass
            ready.set()
            beats = asyncio.create_task(self._beat(ws, stop))
            try:
                async for raw in ws:
                    frame = json.loads(raw)
                    op = frame.get("operation_id")
                    if frame.get("type") == "command" and op not in self.running:
                        # A re-sent command for the running pull is answered by that pull.
                        self.commands += 1
                        self.running[op] = asyncio.create_task(self._pull(ws, op))
                    if stop.is_set():
                        break
            finally:
                beats.cancel()

    async def _beat(self, ws: Any, stop: asyncio.Event) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            body = {
                "seq": seq,
                "session_id": self.session,
                "sent_at": None,
                "ollama": {"reachable": True, "version": "0.5.7", "latency_ms": 2.5, "error": None},
                "models_digest": DIGEST,
            }
            await ws.send(json.dumps({"type": "heartbeat", "id": seq, "body": body}))
            await asyncio.sleep(5)

    async def _pull(self, ws: Any, operation_id: str) -> None:
        async def progress(status: str, completed: int | None, total: int | None) -> None:
            body = {"status": status, "digest": None, "completed": completed, "total": total}
            frame = {"type": "progress", "operation_id": operation_id, "body": body}
            await ws.send(json.dumps(frame))
            self.progress_sent += 1

        await progress("pulling manifest", None, None)
        steps = max(1, int(self.pull_s))
        for i in range(steps + 1):
            await progress(f"pulling {DIGEST[:12]}", WEIGHTS * i // steps, WEIGHTS)
            if i < steps:
                await asyncio.sleep(self.pull_s / steps)
        for phase in ("verifying sha256 digest", "writing manifest", "success"):
            await progress(phase, None, None)
        result = {"status": "succeeded", "reason": None}
        await ws.send(json.dumps({"type": "result", "operation_id": operation_id, "body": result}))


async def count_events(client: httpx.AsyncClient, stream: str) -> tuple[int, dict[str, int]]:
    total, by_type, after = 0, {}, 0
    while True:
        page = (
            await client.get(
                "/api/v1/events", params={"stream": stream, "after": after, "limit": 1000}
            )
        ).json()
        items = page["items"]
        if not items:
            return total, by_type
        for item in items:
            by_type[item["type"]] = by_type.get(item["type"], 0) + 1
        total += len(items)
        after = items[-1]["position"]


async def measure(base: str, args: argparse.Namespace) -> dict[str, Any]:
    agents_info = await register(base, args.hosts)
    ws_base = base.replace("http://", "ws://")
    agents = [SimulatedAgent(ws_base, cid, sec, ses, args.pull_s) for cid, sec, ses in agents_info]
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in agents]
    tasks = [asyncio.create_task(a.run(r, stop)) for a, r in zip(agents, readies, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        started = time.monotonic()
        answer = await client.post(
            "/api/v1/operations",
            json={
                "action": "pull",
                "model": "llama3.2:3b",
                "targets": {"client_ids": [a.cid for a in agents]},
                "max_parallel": args.max_parallel,
            },
        )
        answer.raise_for_status()
        operation_id = answer.json()["operation_id"]
        most_running, doc = 0, {}
        deadline = started + args.hosts * args.pull_s + 600
        while time.monotonic() < deadline:
            doc = (await client.get(f"/api/v1/operations/{operation_id}")).json()
            most_running = max(most_running, doc.get("counts", {}).get("running", 0))
            if doc.get("finished_at"):
                break
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        stop.set()
        events, by_type = await count_events(client, f"operation-{operation_id}")
    for task in tasks:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    return {
        "hosts": args.hosts,
        "max_parallel": args.max_parallel,
        "pull_s": args.pull_s,
        "finished": bool(doc.get("finished_at")),
        "counts": doc.get("counts"),
        "seconds": round(elapsed, 1),
        "most_running": most_running,
        "events": events,
        "events_per_host": round(events / args.hosts, 1),
        "events_by_type": by_type,
        "events_per_s": round(events / elapsed, 1),
        "progress_frames_sent": sum(a.progress_sent for a in agents),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--max-parallel", type=int, default=10)
    parser.add_argument("--pull-s", type=float, default=10.0, help="seconds each pull takes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd, env, base = obt_server(Path(tmp) / "data", free_port())
        env["OBT_HEARTBEAT_INTERVAL_S"] = "5"
        with process(cmd, env, base):
            result = asyncio.run(measure(base, args))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
