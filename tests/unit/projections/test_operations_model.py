"""The operations read model from the real commands and projector on the in-memory store."""

from __future__ import annotations

from obt.bootstrap import make_codec
from obt.projections.operations import OPERATIONS
from obt.store.memory import MemoryStore
from tests.support.fleet import Fleet


async def test_an_operation_document_follows_its_targets() -> None:
    fleet = Fleet(MemoryStore(make_codec()))
    await fleet.start()
    await fleet.request_operation(["a", "b", "c"], 2, "pull")
    await fleet.start_target(0, "a")
    await fleet.start_target(0, "b")
    await fleet.report_progress(0, "a", "pulling", 40)
    await fleet.report_result(0, "b", False)
    await fleet.project()
    [doc] = await fleet.store.find(OPERATIONS)
    assert (doc["id"], doc["action"], doc["model"], doc["finished_at"]) == (
        "op1",
        "pull",
        "llama3.2:3b",
        None,
    )
    assert doc["counts"] == {
        "queued": 1,
        "running": 1,
        "succeeded": 0,
        "failed": 1,
        "cancelled": 0,
        "expired": 0,
    }
    assert {k: doc["targets"]["a"][k] for k in ("state", "status", "completed", "total")} == {
        "state": "running",
        "status": "pulling",
        "completed": 40,
        "total": 100,
    }
    assert doc["targets"]["b"]["reason"] == "pull failed"
    await fleet.cancel_operation(0)
    await fleet.project()
    [doc] = await fleet.store.find(OPERATIONS)
    assert doc["counts"]["cancelled"] == 2
    assert doc["finished_at"] is not None
