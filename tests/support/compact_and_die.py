"""Compact a SQLite data directory and kill this process (SIGKILL, no clean-up at all) when
compaction reaches the named step: `python -m tests.support.compact_and_die DATA_DIR STEP`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from obt.bootstrap import make_codec
from obt.compaction import Compactor
from obt.store.sqlite import SQLiteStore


async def main(data_dir: Path, step: str) -> None:
    store = SQLiteStore(data_dir / "obt.sqlite3", make_codec())
    await store.open()

    def fault(at: str) -> None:
        if at == step:
            os.kill(os.getpid(), signal.SIGKILL)

    compactor = Compactor(
        store,
        timedelta(days=14),
        lambda: datetime.now(UTC),
        segment_events=20,
        remove_batch=5,
        fault=fault,
    )
    await compactor.run()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
