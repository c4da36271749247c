"""Retention on SQLite: compaction, the archive, verify, and rebuild from the compacted log.

    python -m bench.retention [--clients 100] [--per-client 10000] [--retention-h 6]

Writes the bench fleet history (bench/history.py: heartbeats every 10 s, an Ollama outage
every 50 heartbeats, a timeout every 200) ending now, rebuilds every read model, compacts with
the given retention, checks that a rebuild from the compacted log gives exactly the same read
models, and prints: compaction rate, live-log bytes before and after (per host, per host-day
beyond the horizon), archive bytes per archived heartbeat, verify rate, rebuild rate.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.history import write_history
from obt.bootstrap import make_codec, tune_gc
from obt.compaction import Compactor
from obt.projections.runner import ProjectionRunner
from obt.store.archive_verify import verify_archive
from obt.store.sqlite import SQLiteStore


def cpu_seconds() -> float:
    """CPU time of this process, every thread: load on the machine does not inflate it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def read_models(path: Path) -> list[tuple[str, str, str]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT collection, key, doc FROM docs ORDER BY collection, key"
        ).fetchall()
    finally:
        connection.close()


async def rebuild(store: SQLiteStore) -> tuple[int, float]:
    runner = ProjectionRunner(store)
    await runner.start()
    started = time.perf_counter()
    count = await runner.rebuild()
    return count, time.perf_counter() - started


async def run(path: Path, clients: int, per_client: int, retention: timedelta) -> None:
    step_s = 10
    start = datetime.now(UTC) - timedelta(seconds=per_client * step_s)
    began = time.perf_counter()
    await write_history(path, clients=clients, per_client=per_client, start=start, step_s=step_s)
    print(f"history: {clients * per_client:,} events, {clients} hosts, written in "
          f"{time.perf_counter() - began:.0f} s")  # fmt: skip
    tune_gc()
    store = SQLiteStore(path, make_codec())
    await store.open()
    try:
        count, seconds = await rebuild(store)
        print(f"rebuild before compaction: {count:,} events in {seconds:.1f} s "
              f"({count / seconds:,.0f} events/s)")  # fmt: skip
        before = read_models(path)
        log_before = await store.log_bytes()
        positions_before = [e.position for e in await store.read_all(limit=10**9)]
        live_before = len(positions_before)
        compactor = Compactor(store, retention, lambda: datetime.now(UTC))
        cpu_before = cpu_seconds()
        report = await compactor.run()
        compaction_cpu = cpu_seconds() - cpu_before
        horizon_events = sum(1 for p in positions_before if p <= report.horizon_position)
        print(f"compaction: {report.summary()}; {report.removed / report.seconds:,.0f} "
              f"heartbeats/s moved; {report.removed / compaction_cpu:,.0f} per CPU-second "
              f"(all threads; the rate a quiet core would allow)")  # fmt: skip
        log_after = await store.log_bytes()
        positions_after = [e.position for e in await store.read_all(limit=10**9)]
        live_after = len(positions_after)
        kept_beyond = sum(1 for p in positions_after if p <= report.horizon_position)
        archive = store.archive()
        archive_bytes = await archive.size_bytes()
        started, cpu_before = time.perf_counter(), cpu_seconds()
        verified = await verify_archive(archive, store)
        verify_s, verify_cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
        assert verified.ok, verified.findings
        count, seconds = await rebuild(store)
        after = read_models(path)
        same = before == after
        print(f"rebuild from the compacted log: {count:,} events in {seconds:.1f} s "
              f"({count / seconds:,.0f} events/s); read models identical: {same}")  # fmt: skip
        assert same, "the compacted log rebuilt other read models"
    finally:
        await store.close()
    span_days = per_client * step_s / 86_400
    beyond_days = max(span_days - retention.total_seconds() / 86_400, 1e-9)
    per_event = log_before / live_before
    print(f"live log: {log_before / 1e6:,.1f} MB ({live_before:,} events, "
          f"{per_event:.0f} B/event) -> {log_after / 1e6:,.1f} MB ({live_after:,} events); "
          f"{log_after / clients / 1e6:.2f} MB per host")  # fmt: skip
    per_host_day = kept_beyond * per_event / clients / beyond_days
    print(f"beyond the horizon: {kept_beyond:,} events kept of {horizon_events:,} "
          f"(~{per_host_day / 1e3:.1f} KB per host-day at {per_event:.0f} B/event)")  # fmt: skip
    print(f"archive: {archive_bytes / 1e6:.2f} MB, {archive_bytes / report.removed:.1f} B per "
          f"archived heartbeat; verify {verified.events / verify_s:,.0f} events/s, "
          f"{verified.events / verify_cpu:,.0f} per CPU-second")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--per-client", type=int, default=10_000)
    parser.add_argument("--retention-h", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(
            run(
                Path(tmp) / "obt.sqlite3",
                args.clients,
                args.per_client,
                timedelta(hours=args.retention_h),
            )
        )


if __name__ == "__main__":
    main()
