"""Notification delivery: the outbox's owed deliveries, sent through the Notifier port, each
attempt recorded as NotificationDelivered or NotificationFailed.

At-least-once: a notice is sent first and recorded after, so a crash between the two repeats
that one attempt (the record never landed) and nothing else: every other attempt is in the
log, and the outbox read model says exactly what is still owed. Failures are retried with
exponential backoff (`base_s` doubling, at most `max_backoff_s` apart) until 24 h after the
notice was made; then the delivery is given up (`next_attempt_at` null).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from datetime import datetime, timedelta
from typing import Any

from obt.commands.handlers import Clock
from obt.commands.repository import deterministic_event_id
from obt.domain.events import Event, NotificationDelivered, NotificationFailed, notice_stream
from obt.errors import DuplicateEventId
from obt.notify import DeliveryFailed, Notice, Notifier, Target, targets_of
from obt.projections.alert_notices import AlertNoticesProjector
from obt.projections.alert_rules import AlertRulesProjector
from obt.projections.runner import ProjectionRunner
from obt.store.ports import ANY, Doc, EventLog, NewEvent

log = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(hours=24)


def backoff(attempt: int, base_s: float, max_s: float) -> timedelta:
    """The wait after failed attempt number `attempt` (1, 2, ...): base, 2 base, 4 base..."""
    return timedelta(seconds=min(base_s * 2 ** min(attempt - 1, 30), max_s))


class NotificationDelivery:
    name = "notification-delivery"

    def __init__(
        self,
        log_: EventLog,
        clock: Clock,
        notifier: Notifier,
        *,
        notices: AlertNoticesProjector,
        rules: AlertRulesProjector,
        server_id: str = "obt",
        base_s: float = 5.0,
        max_backoff_s: float = 3600.0,
        parallel: int = 32,
    ) -> None:
        self._log = log_
        self._clock = clock
        self._notifier = notifier
        self._notices = notices
        self._rules = rules
        self._server_id = server_id
        self._base_s = base_s
        self._max_backoff_s = max_backoff_s
        self._slots = asyncio.Semaphore(parallel)
        # (notice, target) -> the last attempt this job recorded: until the outbox read model
        # shows it, the delivery is not sent again.
        self._recorded: dict[tuple[str, str], int] = {}
        self._inflight: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[int]] = set()

    def due(self, now: datetime) -> list[tuple[Doc, str, int]]:
        """(notice, target id, attempt number) for every delivery owed now."""
        out = []
        for doc in list(self._notices.pending.values()):
            for target_id, delivery in doc["deliveries"].items():
                if delivery["state"] != "pending":
                    continue
                attempt = delivery["attempts"] + 1
                if self._recorded.get((doc["id"], target_id), 0) >= attempt:
                    continue  # recorded; the read model has not caught up yet
                at = delivery["next_attempt_at"]
                if at is not None and datetime.fromisoformat(at) > now:
                    continue
                out.append((doc, target_id, attempt))
        return out

    async def run_once(self) -> int:
        """Start every delivery owed now; each runs on its own task (a slow receiver holds
        up nobody). Returns how many were started."""
        started = 0
        for doc, target_id, attempt in self.due(self._clock.now()):
            key = (doc["id"], target_id)
            if key in self._inflight:
                continue
            self._inflight.add(key)
            task = asyncio.create_task(self._deliver(doc, target_id, attempt))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, key=key))
            started += 1
        return started

    def _done(self, task: asyncio.Task[int], key: tuple[str, str]) -> None:
        self._tasks.discard(task)
        self._inflight.discard(key)
        if not task.cancelled() and task.exception() is not None:
            # Not recorded (the store refused): the delivery stays owed and is tried again.
            log.warning("delivery of %s not recorded: %s", key[0], task.exception())

    async def settle(self) -> None:
        """Wait for the deliveries in flight (tests; a clean stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop: deliveries still in flight are cut off; not recorded, they are owed still."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        close = getattr(self._notifier, "close", None)
        if close is not None:
            await close()

    async def test_send(self, rule: Doc, now: datetime) -> list[dict[str, Any]]:
        """Send a `test` notice straight to every target of `rule` (not through the outbox,
        nothing recorded): what the dashboard's test button shows."""
        body = {
            "kind": "test",
            "rule_id": rule["id"],
            "rule_name": rule["name"],
            "client_id": None,
            "hostname": None,
            "status": None,
            "since": None,
            "at": now.isoformat(),
            "dedupe_key": f"{rule['id']}/test/{now.timestamp():.0f}",
        }

        async def one(target: Target) -> dict[str, Any]:
            try:
                await self._notifier.send(target, Notice(body))
            except DeliveryFailed as exc:
                return {"target_id": target.id, "target": target.label, "error": str(exc)}
            except Exception as exc:  # a bug in an adapter: this target's answer, and logged
                log.exception("test notice to %s", target.label)
                error = f"{type(exc).__name__}: {exc}"
                return {"target_id": target.id, "target": target.label, "error": error}
            return {"target_id": target.id, "target": target.label, "error": None}

        return list(await asyncio.gather(*(one(t) for t in targets_of(rule["notify"]))))

    def _target(self, doc: Doc, target_id: str) -> Target | None:
        rule = self._rules.rules.get(doc["rule_id"])
        if rule is None:
            return None
        return next((t for t in targets_of(rule["notify"]) if t.id == target_id), None)

    async def _deliver(self, doc: Doc, target_id: str, attempt: int) -> int:
        label = doc["deliveries"][target_id]["target"]
        target = self._target(doc, target_id)
        common: dict[str, Any] = {
            "notice_id": doc["id"],
            "rule_id": doc["rule_id"],
            "client_id": doc["client_id"],
            "target_id": target_id,
            "target": label,
            "attempt": attempt,
        }
        event: Event
        if target is None:
            event = NotificationFailed(
                **common, error="the target was removed from its rule", next_attempt_at=None
            )
        else:
            async with self._slots:
                try:
                    await self._notifier.send(target, Notice(doc["body"]))
                    event = NotificationDelivered(**common)
                except DeliveryFailed as exc:
                    event = self._failed(doc, common, attempt, str(exc))
                except Exception as exc:  # a bug in an adapter: recorded, retried, logged
                    log.exception("notifier error for %s", label)
                    event = self._failed(doc, common, attempt, f"{type(exc).__name__}: {exc}")
        return await self._record(doc, target_id, attempt, event)

    def _failed(
        self, doc: Doc, common: dict[str, Any], attempt: int, error: str
    ) -> NotificationFailed:
        retry_at: datetime | None = self._clock.now() + backoff(
            attempt, self._base_s, self._max_backoff_s
        )
        if retry_at is not None and retry_at > _created(doc) + GIVE_UP_AFTER:
            retry_at = None  # 24 h of retries: given up
        return NotificationFailed(**common, error=error[:500], next_attempt_at=retry_at)

    async def _record(self, doc: Doc, target_id: str, attempt: int, event: Event) -> int:
        stream = notice_stream(doc["rule_id"], doc["client_id"])
        # DuplicateEventId: another instance recorded this very attempt.
        with contextlib.suppress(DuplicateEventId):
            await self._log.append(
                stream,
                [
                    NewEvent(
                        id=deterministic_event_id(doc["id"], target_id, attempt),
                        type=event.type_name(),
                        data=event.to_data(),
                        metadata={"server_id": self._server_id},
                    )
                ],
                expected_version=ANY,
                recorded_at=self._clock.now(),
            )
        self._recorded[(doc["id"], target_id)] = attempt
        return 1


def _created(doc: Doc) -> datetime:
    return datetime.fromisoformat(doc["created_at"])


def notification_delivery(
    log_: EventLog, clock: Clock, runner: ProjectionRunner, notifier: Notifier, server_id: str
) -> NotificationDelivery:
    """The delivery job over the runner's outbox and rules."""
    notices, rules = runner.projector("alert_notices"), runner.projector("alert_rules")
    assert isinstance(notices, AlertNoticesProjector)
    assert isinstance(rules, AlertRulesProjector)
    return NotificationDelivery(
        log_, clock, notifier, notices=notices, rules=rules, server_id=server_id
    )
