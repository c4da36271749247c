"""Alert-rule commands: load a rule's stream, decide, append at its version; retry a lost race."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from obt.commands.handlers import Clock
from obt.domain import alerts as rules
from obt.domain.alerts import AlertRuleSpec, AlertRuleState, AlertRuleViolation
from obt.domain.events import Event, alert_rule_stream, event_from_data
from obt.errors import (
    CorruptEvent,
    DuplicateEventId,
    InvalidAlertRule,
    UnknownAlertRule,
    WrongExpectedVersion,
)
from obt.store.ports import EventLog, NewEvent

MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateAlertRule:
    name: str
    scope: dict[str, Any]
    condition: dict[str, Any]
    notify: dict[str, Any]
    send_resolved: bool = True
    remind_every_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeAlertRule(CreateAlertRule):
    """Replace every field of rule `rule_id`."""

    rule_id: str


@dataclass(frozen=True, slots=True)
class DeleteAlertRule:
    rule_id: str


@dataclass(frozen=True, slots=True)
class SavedRule:
    """What a create or change recorded: the API answers with it (read models catch up later)."""

    rule_id: str
    spec: AlertRuleSpec
    position: int


def new_rule_id() -> str:
    return uuid.uuid4().hex[:16]


def _spec(cmd: CreateAlertRule | ChangeAlertRule) -> AlertRuleSpec:
    try:
        return rules.validate_rule(
            name=cmd.name,
            scope=cmd.scope,
            condition=cmd.condition,
            notify=cmd.notify,
            send_resolved=cmd.send_resolved,
            remind_every_s=cmd.remind_every_s,
        )
    except AlertRuleViolation as exc:
        raise InvalidAlertRule(exc.code, str(exc)) from None


class AlertRuleCommands:
    def __init__(
        self,
        log: EventLog,
        clock: Clock,
        *,
        server_id: str = "obt",
        new_id: Callable[[], str] = new_rule_id,
    ) -> None:
        self._log = log
        self._clock = clock
        self._server_id = server_id
        self._new_id = new_id

    async def create(self, cmd: CreateAlertRule) -> SavedRule:
        spec = _spec(cmd)
        rule_id = self._new_id()
        position = await self._decide_and_save(rule_id, lambda s: rules.decide_create(s, spec))
        return SavedRule(rule_id, spec, position)

    async def change(self, cmd: ChangeAlertRule) -> SavedRule:
        current = await self.load(cmd.rule_id)
        if current.spec is not None:
            # A webhook given without its secret keeps the one stored for the same url: the
            # API never shows secrets, so an edit cannot send them back.
            known = {w["url"]: w["secret"] for w in current.spec.notify.get("webhooks", [])}
            hooks = [
                {**w, "secret": w.get("secret") or known.get(w.get("url", ""))}
                for w in cmd.notify.get("webhooks", [])
            ]
            cmd = dataclasses.replace(cmd, notify={**cmd.notify, "webhooks": hooks})
        spec = _spec(cmd)
        position = await self._decide_and_save(cmd.rule_id, lambda s: rules.decide_change(s, spec))
        return SavedRule(cmd.rule_id, spec, position)

    async def delete(self, cmd: DeleteAlertRule) -> None:
        await self._decide_and_save(cmd.rule_id, rules.decide_delete)

    async def load(self, rule_id: str) -> AlertRuleState:
        state = AlertRuleState(rule_id)
        for recorded in await self._log.read_stream(alert_rule_stream(rule_id)):
            try:
                event = event_from_data(recorded.type, recorded.data)
            except (KeyError, TypeError, ValueError) as exc:
                raise CorruptEvent(recorded.position, f"{recorded.type}: {exc}") from None
            rules.evolve(state, event)
            state.version = recorded.version
        return state

    async def _decide_and_save(
        self, rule_id: str, decide: Callable[[AlertRuleState], list[Event]]
    ) -> int:
        """Append what `decide` says; the position of the last event (0 when nothing new)."""
        for attempt in range(MAX_ATTEMPTS):
            state = await self.load(rule_id)
            try:
                events = decide(state)
            except AlertRuleViolation as exc:
                if exc.code == "unknown_alert_rule":
                    raise UnknownAlertRule(rule_id) from None
                raise InvalidAlertRule(exc.code, str(exc)) from None
            if not events:
                return 0
            try:
                result = await self._log.append(
                    alert_rule_stream(rule_id),
                    [
                        NewEvent(
                            id=str(uuid.uuid4()),
                            type=e.type_name(),
                            data=e.to_data(),
                            metadata={"server_id": self._server_id},
                        )
                        for e in events
                    ],
                    expected_version=state.version,
                    recorded_at=self._clock.now(),
                )
                return result.last_position
            except (WrongExpectedVersion, DuplicateEventId):
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
