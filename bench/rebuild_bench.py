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
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from obt.bootstrap import make_codec
from obt.domain.events import (
    ClientRegistered,
    ClientTimedOut,
    Event,
    HeartbeatReceived,
    ModelAdded,
    ModelLoaded,
    OllamaBecameUnavailable,
    client_stream,
)
from obt.projections.runner import ProjectionRunner
from obt.store.ports import NewEvent
from obt.store.sqlite import SQLiteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def history(client: int, per_client: int) -> list[tuple[Event, datetime]]:
    cid = f"bench-{client:05d}"
    at = T0 + timedelta(seconds=client % 10)
    out: list[tuple[Event, datetime]] = [
        (
            ClientRegistered(
                client_id=cid,
                hostname=f"gpu-{client:05d}",
                platform={"system": "Linux", "release": "6.8", "machine": "x86_64"},
                agent_version="0.1.0",
                labels={"rack": str(client % 8)},
                ollama={"installed": True, "version": "0.5.7", "base_url": "", "reachable": True},
                session_id=str(uuid.UUID(int=client)),
                secret_sha256="0" * 64,
            ),
            at,
        )
    ]
    for m in range(3):
        out.append(
            (
                ModelAdded(client_id=cid, name=f"model-{m}", digest=f"sha256:{m}", size=4 * 10**9),
                at,
            )
        )
    out.append(
        (ModelLoaded(client_id=cid, name="model-0", digest="sha256:0", size=1, size_vram=1), at)
    )
    seq = 0
    while len(out) < per_client:
        seq += 1
        at += timedelta(seconds=10)
        reachable = seq % 500 not in range(1, 4)
        out.append(
            (
                HeartbeatReceived(
                    client_id=cid,
                    seq=seq,
                    session_id=str(uuid.UUID(int=client)),
                    sent_at=at,
                    clock_skew_ms=3,
                    ollama={
                        "reachable": reachable,
                        "version": "0.5.7",
                        "latency_ms": 2.5,
                        "error": None,
                    },
                    models_digest="f" * 64,
                ),
                at,
            )
        )
        if seq % 500 == 1:
            out.append((OllamaBecameUnavailable(client_id=cid, error="connection refused"), at))
        if seq % 2000 == 0:
            out.append(
                (
                    ClientTimedOut(
                        client_id=cid,
                        last_seen=at,
                        offline_since=at + timedelta(seconds=10),
                        detected_at=at + timedelta(seconds=31),
                        timeout_s=30,
                    ),
                    at + timedelta(seconds=31),
                )
            )
            at += timedelta(seconds=60)
    return out[:per_client]


async def generate(path: Path, events: int, clients: int) -> None:
    store = SQLiteStore(path, make_codec())
    await store.open()
    per_client = events // clients
    try:
        # Interleave clients by time window, as a live fleet would be, in chunks per stream.
        histories = [history(c, per_client) for c in range(clients)]
        chunk = 50
        for start in range(0, per_client, chunk):
            # Every client's next chunk at once: the store commits them as one group.
            await asyncio.gather(
                *(
                    store.append(
                        client_stream(f"bench-{c:05d}"),
                        [
                            NewEvent(id=str(uuid.uuid4()), type=e.type_name(), data=e.to_data())
                            for e, _ in part
                        ],
                        expected_version=start,
                        recorded_at=part[-1][1],
                    )
                    for c, events_of in enumerate(histories)
                    if (part := events_of[start : start + chunk])
                )
            )
    finally:
        await store.close()


async def rebuild(path: Path) -> dict[str, float]:
    store = SQLiteStore(path, make_codec())
    await store.open()
    try:
        runner = ProjectionRunner(store, batch_size=5000)
        await runner.start()
        started = time.perf_counter()
        count = await runner.rebuild()
        seconds = time.perf_counter() - started
    finally:
        await store.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
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
        asyncio.run(generate(path, args.events, args.clients))
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
