"""A stale append that also reuses an event id (what a second alert evaluator sends) is answered
with a conflict, and the store goes on serving appends, on every adapter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from obt.errors import DuplicateEventId, WrongExpectedVersion
from obt.store.ports import NewEvent, Store

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ID = "6f1f3c52-0000-4e43-9d0b-000000000001"


def deleted(rule: str, event_id: str = ID) -> NewEvent:
    return NewEvent(id=event_id, type="AlertRuleDeleted", data={"rule_id": rule})


@pytest.mark.parametrize(("expected", "rule"), [(0, "other"), (0, "same"), (1, "other")])
async def test_a_stale_append_reusing_an_id_is_a_conflict_not_a_stall(
    store: Store, expected: int, rule: str
) -> None:
    await store.append("alert-r-a", [deleted("same")], expected_version=0, recorded_at=T0)
    attempt = store.append("alert-r-a", [deleted(rule)], expected_version=expected, recorded_at=T0)
    try:
        result = await asyncio.wait_for(attempt, timeout=10)
    except (WrongExpectedVersion, DuplicateEventId):
        pass
    else:
        # The very same event sent again is an idempotent no-op.
        assert (expected, rule) == (0, "same") and result.positions == ()
    follow = NewEvent(
        id="6f1f3c52-0000-4e43-9d0b-000000000002", type="AlertRuleDeleted", data={"rule_id": "next"}
    )
    after = await asyncio.wait_for(
        store.append("alert-r-a", [follow], expected_version=1, recorded_at=T0), timeout=10
    )
    assert after.version == 2
