"""The fleet operation aggregate: request, start within max_parallel, progress throttled,
results, cancel and expiry, finished once. Time is passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from obt.domain import operations as rules
from obt.domain.events import (
    Event,
    OperationFinished,
    OperationRequested,
    OperationTargetCancelled,
    OperationTargetExpired,
    OperationTargetFailed,
    OperationTargetProgressed,
    OperationTargetStarted,
    OperationTargetSucceeded,
    event_from_data,
)
from obt.domain.operations import OperationRuleViolation, OperationState

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def apply(state: OperationState, events: list[Event], when: datetime) -> OperationState:
    for event in events:
        # Through the store's shape, as a real load would: data out and back.
        rules.evolve(state, event_from_data(event.type_name(), event.to_data()), when)
        state.version += 1
    return state


def requested(
    hosts: tuple[str, ...] = ("a", "b", "c"), max_parallel: int = 2, action: str = "pull"
) -> OperationState:
    state = OperationState(operation_id="op1")
    events = rules.decide_request(
        state,
        action=action,
        model="llama3.2:3b",
        targets=hosts,
        selector={"client_ids": list(hosts)},
        max_parallel=max_parallel,
        expires_in_s=3600,
        now=T0,
    )
    return apply(state, events, T0)


def test_a_request_records_the_resolved_hosts_and_its_expiry() -> None:
    state = OperationState(operation_id="op1")
    events = rules.decide_request(
        state,
        action="pull",
        model="llama3.2:3b",
        targets=["b", "a", "b"],
        selector={"labels": {"rack": "1"}},
        max_parallel=4,
        expires_in_s=60,
        now=T0,
    )
    assert events == [
        OperationRequested(
            operation_id="op1",
            action="pull",
            model="llama3.2:3b",
            targets=["a", "b"],
            selector={"labels": {"rack": "1"}},
            max_parallel=4,
            expires_at=at(60),
        )
    ]
    apply(state, events, T0)
    assert {cid: t.state for cid, t in state.targets.items()} == {"a": "queued", "b": "queued"}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"action": "copy"}, "invalid_action"),
        ({"model": "https://evil/model"}, "invalid_model_name"),
        ({"model": "llama3@sha256:abc"}, "invalid_model_name"),
        ({"targets": []}, "no_targets"),
        ({"action": "delete", "selector": {"labels": {"rack": "1"}}}, "explicit_targets_required"),
        ({"max_parallel": 0}, "invalid_max_parallel"),
        ({"expires_in_s": 0}, "invalid_expiry"),
    ],
)
def test_a_request_is_refused_with_a_stable_code(changes: dict[str, object], code: str) -> None:
    request: dict[str, object] = {
        "action": "pull",
        "model": "llama3.2:3b",
        "targets": ["a"],
        "selector": {"client_ids": ["a"]},
        "max_parallel": 4,
        "expires_in_s": 60,
        **changes,
    }
    with pytest.raises(OperationRuleViolation) as refused:
        rules.decide_request(OperationState(operation_id="op1"), now=T0, **request)  # type: ignore[arg-type]
    assert refused.value.code == code


def test_an_operation_is_requested_once() -> None:
    with pytest.raises(OperationRuleViolation, match="exists"):
        rules.decide_request(
            requested(),
            action="pull",
            model="m",
            targets=["a"],
            selector={"client_ids": ["a"]},
            max_parallel=1,
            expires_in_s=1,
            now=T0,
        )


def test_targets_start_within_max_parallel_and_once() -> None:
    state = requested(max_parallel=2)
    for host in ("a", "b"):
        events = rules.decide_start(state, client_id=host, now=at(1))
        assert events == [OperationTargetStarted(operation_id="op1", client_id=host)]
        apply(state, events, at(1))
    assert rules.decide_start(state, client_id="c", now=at(1)) == []  # two running already
    assert rules.decide_start(state, client_id="a", now=at(1)) == []  # not queued any more
    assert rules.decide_start(state, client_id="zz", now=at(1)) == []  # not a target
    apply(state, rules.decide_result(state, client_id="a", succeeded=True, reason=None), at(2))
    assert rules.decide_start(state, client_id="c", now=at(3)) != []
    assert rules.decide_start(state, client_id="c", now=at(3601)) == []  # expired


def test_progress_is_recorded_on_a_phase_change_or_every_5_s() -> None:
    state = requested()
    apply(state, rules.decide_start(state, client_id="a", now=at(0)), at(0))

    def report(second: float, status: str, completed: int) -> list[Event]:
        events = rules.decide_progress(
            state, client_id="a", status=status, completed=completed, total=100, now=at(second)
        )
        apply(state, events, at(second))
        return events

    assert report(1, "pulling manifest", 0) != []
    assert report(2, "pulling sha256:1", 10) != []  # a new phase
    assert report(3, "pulling sha256:1", 20) == []
    assert report(6.9, "pulling sha256:1", 60) == []
    assert report(7, "pulling sha256:1", 70) == [
        OperationTargetProgressed(
            operation_id="op1", client_id="a", status="pulling sha256:1", completed=70, total=100
        )
    ]
    assert (
        rules.decide_progress(state, client_id="b", status="x", completed=1, total=2, now=at(8))
        == []
    )  # b is not running


def test_the_last_result_finishes_the_operation_once() -> None:
    state = requested(hosts=("a", "b"), max_parallel=2)
    for host in ("a", "b"):
        apply(state, rules.decide_start(state, client_id=host, now=at(0)), at(0))
    events = rules.decide_result(state, client_id="a", succeeded=True, reason=None)
    assert events == [OperationTargetSucceeded(operation_id="op1", client_id="a")]
    apply(state, events, at(1))
    assert rules.decide_result(state, client_id="a", succeeded=False, reason="late") == []
    events = rules.decide_result(state, client_id="b", succeeded=False, reason="no space left")
    assert events == [
        OperationTargetFailed(operation_id="op1", client_id="b", reason="no space left"),
        OperationFinished(operation_id="op1", succeeded=1, failed=1, cancelled=0, expired=0),
    ]
    apply(state, events, at(2))
    assert state.finished
    assert rules.decide_cancel(state) == []


def test_cancel_ends_what_is_queued_or_running() -> None:
    state = requested(max_parallel=1)
    apply(state, rules.decide_start(state, client_id="a", now=at(0)), at(0))
    events = rules.decide_cancel(state)
    assert events == [
        OperationTargetCancelled(operation_id="op1", client_id="a"),
        OperationTargetCancelled(operation_id="op1", client_id="b"),
        OperationTargetCancelled(operation_id="op1", client_id="c"),
        OperationFinished(operation_id="op1", succeeded=0, failed=0, cancelled=3, expired=0),
    ]
    with pytest.raises(OperationRuleViolation) as refused:
        rules.decide_cancel(OperationState(operation_id="nope"))
    assert refused.value.code == "unknown_operation"


def test_expiry_ends_the_rest_past_expires_at() -> None:
    state = requested(max_parallel=1)
    apply(state, rules.decide_start(state, client_id="a", now=at(0)), at(0))
    apply(state, rules.decide_result(state, client_id="a", succeeded=True, reason=None), at(1))
    assert rules.decide_expire(state, now=at(3599)) == []
    events = rules.decide_expire(state, now=at(3600))
    assert events == [
        OperationTargetExpired(operation_id="op1", client_id="b"),
        OperationTargetExpired(operation_id="op1", client_id="c"),
        OperationFinished(operation_id="op1", succeeded=1, failed=0, cancelled=0, expired=2),
    ]
    apply(state, events, at(3600))
    assert rules.decide_expire(state, now=at(7200)) == []


def test_fold_rebuilds_the_state_from_history() -> None:
    live = requested(hosts=("a",), max_parallel=1)
    history: list[tuple[Event, datetime]] = []
    state = OperationState(operation_id="op1")
    steps = [
        rules.decide_request(
            state,
            action="delete",
            model="phi3",
            targets=["a"],
            selector={"client_ids": ["a"]},
            max_parallel=1,
            expires_in_s=60,
            now=T0,
        )
    ]
    apply(state, steps[0], T0)
    history += [(e, T0) for e in steps[0]]
    for decide in (
        lambda s: rules.decide_start(s, client_id="a", now=at(1)),
        lambda s: rules.decide_result(s, client_id="a", succeeded=True, reason=None),
    ):
        events = decide(state)
        apply(state, events, at(1))
        history += [(e, at(1)) for e in events]
    assert rules.fold("op1", history) == state
    assert state.finished and state.version == 4
    assert live.model == "llama3.2:3b"
