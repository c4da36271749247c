"""The fleet query path at 100,000 clients, in one process: what GET /clients pages and the
counts cost the server, without HTTP or a log to catch up.

    python -m bench.fleet_query_bench [--clients 100000] [--requests 500] [--changes 10000]

The real ClientsProjector and ReadModels over N client documents shaped as the projector
writes them (statuses mixed: 90 % online, 5 % degraded, 5 % offline; 8 racks; three models),
fed through the projector's change feed like live heartbeats. Timed per request: the page
built by ReadModels.client_page (index, summaries) plus its JSON and gzip, as the route and the
edge middleware send it. Reported: the first build of the index (a server's first request
after start), first-page p50/p99 idle and with `--changes` heartbeats (same status) and 1 %
status changes applied between requests, other sorts and filters, and the live counts.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from obt.projections.client_index import ClientQuery
from obt.projections.clients import ClientsProjector
from obt.projections.queries import ReadModels
from obt.store.memory import MemoryStore

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def fleet(clients: int) -> ClientsProjector:
    projector = ClientsProjector()
    rng = random.Random(17)
    since = (NOW - timedelta(hours=30)).isoformat()
    for i in range(clients):
        cid = f"bench-{i:06d}"
        status = rng.choices(["online", "degraded", "offline"], [90, 5, 5])[0]
        projector.docs[cid] = {
            "client_id": cid,
            "hostname": f"gpu-{i:06d}",
            "status": status,
            "status_since": since,
            "underlying": status,
            "last_seen": NOW.isoformat(),
            "registered_at": since,
            "platform": {"system": "Linux", "release": "6.8", "machine": "x86_64"},
            "agent_version": "0.1.0" if i % 3 else "0.2.0",
            "labels": {"rack": str(i % 8)},
            "ollama": {"reachable": status == "online", "version": "0.5.7", "error": None},
            "models_count": 3,
            "loaded_count": 1,
            "recent": [[status, (NOW - timedelta(hours=30)).timestamp(), None]],
            "clock_skew_ms": 3,
            "session_id": None,
            "position": i + 1,
        }
    return projector


def timed(times: int, request: Callable[[], Any], between: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(times):
        between()
        t0 = time.perf_counter()
        request()
        out.append(1000 * (time.perf_counter() - t0))
    return sorted(out)


def figures(durations: list[float]) -> str:
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
    return (
        f"p50 {statistics.median(durations):.2f} ms, p99 {p99:.2f} ms, max {durations[-1]:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--changes", type=int, default=10_000, help="heartbeats between requests")
    args = parser.parse_args()

    projector = fleet(args.clients)
    read = ReadModels(MemoryStore(), projector)
    ids = list(projector.docs)
    rng = random.Random(1)

    def page(query: ClientQuery) -> bytes:
        body = asyncio.run(read.client_page(query, NOW))
        return gzip.compress(orjson.dumps(body), compresslevel=6)

    first = ClientQuery(sort="status", limit=100)
    t0 = time.perf_counter()
    size = len(page(first))
    print(
        f"{args.clients:,} clients; first request (builds the index): "
        f"{1000 * (time.perf_counter() - t0):.0f} ms; first page {size / 1024:.1f} KB gzip"
    )
    print(f"first page, idle: {figures(timed(args.requests, lambda: page(first), lambda: None))}")

    # What the projector's flush does for each change: mark the id in its readers' feeds.
    changes = projector._watchers[0]

    def heartbeats() -> None:
        for cid in rng.sample(ids, args.changes):
            doc = projector.docs[cid]
            doc["last_seen"] = NOW.isoformat()
            changes.any.add(cid)
        for cid in rng.sample(ids, args.changes // 100):
            doc = projector.docs[cid]
            doc["status"] = "offline" if doc["status"] == "online" else "online"
            changes.shaped.add(cid)

    print(
        f"first page, {args.changes:,} heartbeats and {args.changes // 100:,} status changes "
        f"before each request: {figures(timed(args.requests, lambda: page(first), heartbeats))}"
    )
    counts = timed(args.requests, lambda: read.status_counts(NOW), heartbeats)
    print(f"live counts (index) after each batch of changes: {figures(counts)}")
    # Orderings that heartbeats move come last: once built, every request keeps them up to date.
    for name, query in [
        ("status=offline", ClientQuery(sort="status", statuses=frozenset({"offline"}), limit=100)),
        ("label=rack=3", ClientQuery(sort="status", labels=(("rack", "3"),), limit=100)),
        ("q=gpu-0999 (100 matches)", ClientQuery(sort="status", search="gpu-0999", limit=100)),
        ("q=0.2.0 (a third match)", ClientQuery(sort="status", search="0.2.0", limit=100)),
        ("sort=uptime_24h", ClientQuery(sort="uptime_24h", limit=100)),
        ("sort=last_seen", ClientQuery(sort="last_seen", order="desc", limit=100)),
    ]:
        page(query)
        runs = max(20, args.requests // 10)
        durations = timed(runs, lambda q=query: page(q), heartbeats)
        print(f"{name}, {args.changes:,} heartbeats before each: {figures(durations)}")


if __name__ == "__main__":
    main()
