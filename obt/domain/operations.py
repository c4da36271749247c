"""The fleet operation aggregate (stream `operation-<id>`): pull or delete one model on chosen
hosts. `decide_*` turn a request or an agent's report into events, `evolve` folds them.

Pure, like obt/domain/client.py: time arrives as an argument. Per target the states are
queued -> running -> succeeded | failed, and cancelled or expired from queued or running; an
operation is finished once no target is queued or running (OperationFinished, once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
)
from obt.domain.model_names import is_valid_model_name

ACTIONS = ("pull", "delete")
QUEUED, RUNNING = "queued", "running"
SUCCEEDED, FAILED, CANCELLED, EXPIRED = "succeeded", "failed", "cancelled", "expired"
ACTIVE = (QUEUED, RUNNING)
PROGRESS_EVERY = timedelta(seconds=5)  # at most one progress event per target per 5 s ...
MAX_TARGETS = 10_000
MAX_PARALLEL = 1_000


class OperationRuleViolation(Exception):
    """A request the operation refuses; `code` is stable, the message is for humans."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class TargetState:
    state: str = QUEUED
    status: str | None = None  # the agent's last phase ("pulling manifest", "verifying" ...)
    completed: int | None = None
    total: int | None = None
    reason: str | None = None
    progressed_at: datetime | None = None  # of the last recorded progress event


@dataclass(slots=True)
class OperationState:
    operation_id: str
    version: int = 0
    action: str | None = None
    model: str | None = None
    max_parallel: int = 4
    expires_at: datetime | None = None
    targets: dict[str, TargetState] = field(default_factory=dict)
    finished: bool = False

    @property
    def requested(self) -> bool:
        return self.action is not None

    def count(self, state: str) -> int:
        return sum(1 for t in self.targets.values() if t.state == state)


# ---------------------------------------------------------------- decisions


def decide_request(
    state: OperationState,
    *,
    action: str,
    model: str,
    targets: Iterable[str],
    selector: dict[str, object],
    max_parallel: int,
    expires_in_s: float,
    now: datetime,
) -> list[Event]:
    """Record a new operation on the hosts `targets` (already resolved from `selector`)."""
    if state.requested:
        raise OperationRuleViolation("operation_exists", f"operation {state.operation_id!r} exists")
    if action not in ACTIONS:
        raise OperationRuleViolation("invalid_action", f"action: one of {', '.join(ACTIONS)}")
    if not is_valid_model_name(model):
        raise OperationRuleViolation("invalid_model_name", f"{model!r} is not an Ollama model name")
    hosts = sorted(set(targets))
    if not hosts:
        raise OperationRuleViolation("no_targets", "no registered host matches the targets")
    if len(hosts) > MAX_TARGETS:
        raise OperationRuleViolation("too_many_targets", f"at most {MAX_TARGETS} hosts at once")
    if action == "delete" and "client_ids" not in selector:
        raise OperationRuleViolation(
            "explicit_targets_required", "a delete names its hosts (targets.client_ids)"
        )
    if not 1 <= max_parallel <= MAX_PARALLEL:
        raise OperationRuleViolation("invalid_max_parallel", f"max_parallel: 1-{MAX_PARALLEL}")
    if expires_in_s <= 0:
        raise OperationRuleViolation("invalid_expiry", "expires_in_s must be positive")
    return [
        OperationRequested(
            operation_id=state.operation_id,
            action=action,
            model=model,
            targets=hosts,
            selector=selector,
            max_parallel=max_parallel,
            expires_at=now + timedelta(seconds=expires_in_s),
        )
    ]


def decide_start(state: OperationState, *, client_id: str, now: datetime) -> list[Event]:
    """Start a queued target, within `max_parallel`; nothing when it may not start now."""
    target = state.targets.get(client_id)
    if state.finished or target is None or target.state != QUEUED:
        return []
    if state.expires_at is not None and now >= state.expires_at:
        return []
    if state.count(RUNNING) >= state.max_parallel:
        return []
    return [OperationTargetStarted(operation_id=state.operation_id, client_id=client_id)]


def decide_progress(
    state: OperationState,
    *,
    client_id: str,
    status: str | None,
    completed: int | None,
    total: int | None,
    now: datetime,
) -> list[Event]:
    """A progress report: recorded when its phase changed or 5 s after the last one."""
    target = state.targets.get(client_id)
    if target is None or target.state != RUNNING:
        return []
    due = target.progressed_at is None or now - target.progressed_at >= PROGRESS_EVERY
    if status == target.status and not due:
        return []
    return [
        OperationTargetProgressed(
            operation_id=state.operation_id,
            client_id=client_id,
            status=status,
            completed=completed,
            total=total,
        )
    ]


def decide_result(
    state: OperationState, *, client_id: str, succeeded: bool, reason: str | None
) -> list[Event]:
    """The agent's final word on its target; late or repeated results change nothing."""
    target = state.targets.get(client_id)
    if target is None or target.state != RUNNING:
        return []
    op = state.operation_id
    event: Event
    if succeeded:
        event = OperationTargetSucceeded(operation_id=op, client_id=client_id)
    else:
        event = OperationTargetFailed(
            operation_id=op, client_id=client_id, reason=reason or "failed"
        )
    return [event, *_finish_if_done(state, {client_id: SUCCEEDED if succeeded else FAILED})]


def decide_cancel(state: OperationState) -> list[Event]:
    """Cancel every target still queued or running (their agents are told separately)."""
    if not state.requested:
        raise OperationRuleViolation("unknown_operation", f"no operation {state.operation_id!r}")
    ended = {cid: CANCELLED for cid, t in state.targets.items() if t.state in ACTIVE}
    events: list[Event] = [
        OperationTargetCancelled(operation_id=state.operation_id, client_id=cid)
        for cid in sorted(ended)
    ]
    return [*events, *_finish_if_done(state, ended)]


def decide_expire(state: OperationState, *, now: datetime) -> list[Event]:
    """Past its expiry, every target still queued or running expires."""
    if state.finished or state.expires_at is None or now < state.expires_at:
        return []
    ended = {cid: EXPIRED for cid, t in state.targets.items() if t.state in ACTIVE}
    events: list[Event] = [
        OperationTargetExpired(operation_id=state.operation_id, client_id=cid)
        for cid in sorted(ended)
    ]
    return [*events, *_finish_if_done(state, ended)]


def _finish_if_done(state: OperationState, ending: dict[str, str]) -> list[Event]:
    if state.finished:
        return []
    outcome = {cid: t.state for cid, t in state.targets.items()}
    outcome.update(ending)
    if any(s in ACTIVE for s in outcome.values()):
        return []
    counts = dict.fromkeys((SUCCEEDED, FAILED, CANCELLED, EXPIRED), 0)
    for s in outcome.values():
        counts[s] += 1
    return [OperationFinished(operation_id=state.operation_id, **counts)]


# ---------------------------------------------------------------- evolution


def evolve(state: OperationState, event: Event, at: datetime) -> OperationState:
    """Apply one event (recorded at `at`) in place, and return the state."""
    match event:
        case OperationRequested():
            state.action = event.action
            state.model = event.model
            state.max_parallel = event.max_parallel
            state.expires_at = event.expires_at
            state.targets = {cid: TargetState() for cid in event.targets}
        case OperationTargetStarted():
            _target(state, event.client_id).state = RUNNING
        case OperationTargetProgressed():
            target = _target(state, event.client_id)
            target.status = event.status
            target.completed = event.completed
            target.total = event.total
            target.progressed_at = at
        case OperationTargetSucceeded():
            _target(state, event.client_id).state = SUCCEEDED
        case OperationTargetFailed():
            target = _target(state, event.client_id)
            target.state = FAILED
            target.reason = event.reason
        case OperationTargetCancelled():
            _target(state, event.client_id).state = CANCELLED
        case OperationTargetExpired():
            _target(state, event.client_id).state = EXPIRED
        case OperationFinished():
            state.finished = True
        case _:
            pass
    return state


def _target(state: OperationState, client_id: str) -> TargetState:
    return state.targets.setdefault(client_id, TargetState())


def fold(operation_id: str, history: Iterable[tuple[Event, datetime]]) -> OperationState:
    state = OperationState(operation_id=operation_id)
    for event, at in history:
        evolve(state, event, at)
        state.version += 1
    return state
