"""Alert evaluation: every tick, each rule against each client, from the read models' memory;
AlertFired / AlertReminded / AlertResolved appended on the pair's own stream.

The facts come from projectors that follow the log with checkpoints (clients, alert_rules,
alerts); time comes from the injected clock, because a grace period passes without any event.
Each append expects the pair's stream version as the alerts read model knows it, and its event
id is derived from that version: two evaluators (or one that runs again before its read model
caught up) cannot fire one alert twice. The loser's decision is simply dropped; the next tick
decides again from fresh facts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from obt.commands.handlers import Clock
from obt.commands.repository import ClientRepository, deterministic_event_id
from obt.domain.alerts_conditions import (
    ClientView,
    RuleView,
    Verdict,
    decide_alert,
    judge,
    majority_digests,
)
from obt.domain.events import Event, alert_stream
from obt.errors import DuplicateEventId, WrongExpectedVersion
from obt.projections.alert_rules import AlertRulesProjector
from obt.projections.alerts import AlertsProjector, pair_key
from obt.projections.clients import ClientsProjector
from obt.projections.runner import ProjectionRunner
from obt.store.ports import Doc, EventLog, NewEvent

log = logging.getLogger(__name__)


def client_view(doc: Doc, models_known: bool) -> ClientView | None:
    status, since = doc.get("status"), doc.get("status_since")
    if status is None or since is None:
        return None
    models = {m["name"]: m["digest"] for m in doc.get("models", {}).values()}
    return ClientView(
        client_id=doc["client_id"],
        hostname=doc.get("hostname"),
        status=status,
        status_since=datetime.fromisoformat(since),
        labels=doc.get("labels") or {},
        models=models if models_known or models else None,
    )


class AlertEvaluator:
    name = "alert-evaluation"

    def __init__(
        self,
        log_: EventLog,
        clock: Clock,
        *,
        rules: AlertRulesProjector,
        alerts: AlertsProjector,
        clients: ClientsProjector,
        models_reported: Callable[[], Iterable[str]],
        server_id: str = "obt",
    ) -> None:
        self._log = log_
        self._clock = clock
        self._rules = rules
        self._alerts = alerts
        self._clients = clients
        self._models_reported = models_reported  # ids of clients whose model report is held
        self._server_id = server_id
        # When a condition that cannot say since when (model ones) was first seen holding.
        self._pending: dict[str, datetime] = {}
        self.lost_races = 0

    async def run_once(self) -> int:
        now = self._clock.now()
        decided = self.decide(now)
        appended = 0
        for (rule_id, client_id, version), events in decided:
            appended += await self._append(rule_id, client_id, version, events, now)
        return appended

    def decide(self, now: datetime) -> list[tuple[tuple[str, str, int], list[Event]]]:
        """What every (rule, client) pair needs now, with the stream version to append at."""
        reported = set(self._models_reported())
        views = {
            view.client_id: view
            for doc in self._clients.docs.values()
            if (view := client_view(doc, doc["client_id"] in reported)) is not None
        }
        rules = {rule_id: RuleView.of(doc) for rule_id, doc in self._rules.rules.items()}
        out: list[tuple[tuple[str, str, int], list[Event]]] = []
        seen: set[str] = set()
        for rule in rules.values():
            drift = {}
            if rule.condition.get("kind") == "digest_drift":
                in_scope = (v for v in views.values() if rule.scope.covers(v.client_id, v.labels))
                drift = majority_digests(in_scope, rule.condition.get("model"))
            for view in views.values():
                key = pair_key(rule.rule_id, view.client_id)
                seen.add(key)
                verdict = judge(rule, view, drift)
                self._note_pending(key, verdict, now)
                firing = self._alerts.firing(rule.rule_id, view.client_id)
                events = decide_alert(
                    rule.rule_id, rule, view, firing, verdict, self._pending.get(key), now
                )
                if events:
                    out.append(((rule.rule_id, view.client_id, firing.version), events))
        # Firing alerts whose rule is gone resolve (without a notice).
        for key, pair in self._alerts.pairs.items():
            if key in seen or not pair.get("open_key") or pair["rule_id"] in rules:
                continue
            view = views.get(pair["client_id"])
            if view is None:
                continue
            firing = self._alerts.firing(pair["rule_id"], pair["client_id"])
            events = decide_alert(pair["rule_id"], None, view, firing, Verdict(False), None, now)
            out.append(((pair["rule_id"], pair["client_id"], firing.version), events))
        self._pending = {k: v for k, v in self._pending.items() if k in seen}
        return out

    def _note_pending(self, key: str, verdict: Verdict, now: datetime) -> None:
        if verdict.holds is False:
            self._pending.pop(key, None)
        elif verdict.holds is True and verdict.since is None:
            self._pending.setdefault(key, now)

    async def _append(
        self, rule_id: str, client_id: str, version: int, events: list[Event], now: datetime
    ) -> int:
        stream = alert_stream(rule_id, client_id)
        try:
            result = await self._log.append(
                stream,
                [
                    NewEvent(
                        id=deterministic_event_id(stream, version + 1 + i),
                        type=e.type_name(),
                        data=e.to_data(),
                        metadata={"server_id": self._server_id},
                    )
                    for i, e in enumerate(events)
                ],
                expected_version=version,
                recorded_at=now,
            )
        except (WrongExpectedVersion, DuplicateEventId):
            # Another evaluator got there first, or the alerts read model has not seen our
            # last append yet: decide again next tick from fresh facts.
            self.lost_races += 1
            return 0
        for e in events:
            log.info("%s: rule %s, client %s", e.type_name(), rule_id, client_id)
        return len(result.positions)


def alert_evaluator(
    log_: EventLog,
    clock: Clock,
    runner: ProjectionRunner,
    repo: ClientRepository,
    server_id: str,
) -> AlertEvaluator:
    """The evaluator over the runner's projectors and the aggregate cache's model reports."""
    rules, alerts, clients = (runner.projector(n) for n in ("alert_rules", "alerts", "clients"))
    assert isinstance(rules, AlertRulesProjector)
    assert isinstance(alerts, AlertsProjector)
    assert isinstance(clients, ClientsProjector)
    return AlertEvaluator(
        log_,
        clock,
        rules=rules,
        alerts=alerts,
        clients=clients,
        models_reported=lambda: (s.client_id for s in repo.cached() if s.models_reported),
        server_id=server_id,
    )
