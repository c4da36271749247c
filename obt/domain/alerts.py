"""The alert-rule aggregate: what a rule may say (validation), `decide_*` and `evolve`.

Pure: a rule arrives as plain data (the API converts its schema at the edge) and leaves as
events. What a rule means for a client at a moment is obt/domain/alerts_conditions.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from obt.domain.events import AlertRuleChanged, AlertRuleCreated, AlertRuleDeleted, Event

# Statuses a rule may watch. `unknown` is the server's own outage, never the client's fault:
# alerting on it would page people for OBT restarts. `online` is not a problem.
ALERTABLE_STATUSES = ("offline", "degraded", "stopped")
CONDITION_KINDS = ("status", "model_missing", "digest_drift")
MAX_FOR_S = 7 * 24 * 3600
MIN_REMIND_S = 60
MAX_REMIND_S = 30 * 24 * 3600
MAX_TARGETS = 20
URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]{0,31}://\S+$", re.IGNORECASE)
WEBHOOK_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


class AlertRuleViolation(Exception):
    """A rule OBT refuses; `code` is stable, the message is for humans."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class AlertRuleSpec:
    """Everything a rule says, already checked by `validate_rule`."""

    name: str
    scope: dict[str, Any]
    condition: dict[str, Any]
    notify: dict[str, Any]
    send_resolved: bool = True
    remind_every_s: float | None = None


@dataclass
class AlertRuleState:
    rule_id: str
    version: int = 0
    exists: bool = False
    deleted: bool = False
    spec: AlertRuleSpec | None = None


@dataclass(frozen=True, slots=True)
class RuleScope:
    client_ids: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, scope: Mapping[str, Any]) -> RuleScope:
        return cls(frozenset(scope.get("client_ids") or ()), dict(scope.get("labels") or {}))

    def covers(self, client_id: str, labels: Mapping[str, str]) -> bool:
        """Empty scope = every client; ids and labels both given = a client must match both."""
        if self.client_ids and client_id not in self.client_ids:
            return False
        return all(labels.get(k) == v for k, v in self.labels.items())


def _invalid(message: str) -> AlertRuleViolation:
    return AlertRuleViolation("invalid_alert_rule", message)


def _validate_scope(scope: Mapping[str, Any]) -> dict[str, Any]:
    ids = list(scope.get("client_ids") or [])
    labels = dict(scope.get("labels") or {})
    if len(set(ids)) != len(ids):
        raise _invalid("scope.client_ids: each id may appear once")
    return {"client_ids": sorted(ids), "labels": labels}


def _validate_condition(condition: Mapping[str, Any]) -> dict[str, Any]:
    kind = condition.get("kind")
    if kind not in CONDITION_KINDS:
        raise _invalid(f"condition.kind must be one of {', '.join(CONDITION_KINDS)}")
    for_s = condition.get("for_s")
    if for_s is not None and not 0 <= for_s <= MAX_FOR_S:
        raise _invalid(f"condition.for_s must be between 0 and {MAX_FOR_S}")
    if kind == "status":
        statuses = list(condition.get("statuses") or [])
        if not statuses:
            raise _invalid("condition.statuses: name at least one status")
        wrong = [s for s in statuses if s not in ALERTABLE_STATUSES]
        if wrong:
            raise _invalid(
                f"condition.statuses: {', '.join(map(str, wrong))} cannot be alerted on; "
                f"use {', '.join(ALERTABLE_STATUSES)} (unknown is the server's own outage)"
            )
        return {
            "kind": kind,
            "statuses": sorted(set(statuses)),
            "for_s": float(for_s if for_s is not None else 0),
        }
    model = condition.get("model")
    if kind == "model_missing" and not model:
        raise _invalid("condition.model: name the model that must be present")
    out: dict[str, Any] = {"kind": kind, "model": model or None}
    out["for_s"] = float(for_s if for_s is not None else 0)
    return out


def _is_http_url(url: str) -> bool:
    if not WEBHOOK_URL.match(url):
        return False
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:  # e.g. a broken IPv6 literal
        return False


def _validate_notify(notify: Mapping[str, Any]) -> dict[str, Any]:
    urls = list(notify.get("urls") or [])
    webhooks = [dict(w) for w in notify.get("webhooks") or []]
    if len(urls) + len(webhooks) > MAX_TARGETS:
        raise _invalid(f"notify: at most {MAX_TARGETS} targets per rule")
    for url in urls:
        if not URL_SCHEME.match(url):
            raise _invalid("notify.urls: each must be an Apprise URL such as ntfy://topic")
    for hook in webhooks:
        if not _is_http_url(str(hook.get("url", ""))):
            raise _invalid("notify.webhooks: each url must be an http:// or https:// URL")
        if not hook.get("secret"):
            raise _invalid("notify.webhooks: each webhook needs a secret to sign with")
    return {
        "urls": urls,
        "webhooks": [{"url": h["url"], "secret": h["secret"]} for h in webhooks],
    }


def validate_rule(
    *,
    name: str,
    scope: Mapping[str, Any],
    condition: Mapping[str, Any],
    notify: Mapping[str, Any],
    send_resolved: bool = True,
    remind_every_s: float | None = None,
) -> AlertRuleSpec:
    """A checked, normalised rule; AlertRuleViolation says what is wrong."""
    if not name.strip():
        raise _invalid("name: give the rule a name")
    if remind_every_s is not None and not MIN_REMIND_S <= remind_every_s <= MAX_REMIND_S:
        raise _invalid(
            f"remind_every_s must be null (no reminders) or between {MIN_REMIND_S} "
            f"and {MAX_REMIND_S}"
        )
    return AlertRuleSpec(
        name=name.strip(),
        scope=_validate_scope(scope),
        condition=_validate_condition(condition),
        notify=_validate_notify(notify),
        send_resolved=send_resolved,
        remind_every_s=float(remind_every_s) if remind_every_s is not None else None,
    )


def _fields(spec: AlertRuleSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "scope": spec.scope,
        "condition": spec.condition,
        "notify": spec.notify,
        "send_resolved": spec.send_resolved,
        "remind_every_s": spec.remind_every_s,
    }


def _unknown(state: AlertRuleState) -> AlertRuleViolation:
    return AlertRuleViolation("unknown_alert_rule", f"no alert rule {state.rule_id!r}")


def decide_create(state: AlertRuleState, spec: AlertRuleSpec) -> list[Event]:
    if state.exists:
        raise AlertRuleViolation("alert_rule_exists", f"alert rule {state.rule_id!r} exists")
    return [AlertRuleCreated(rule_id=state.rule_id, **_fields(spec))]


def decide_change(state: AlertRuleState, spec: AlertRuleSpec) -> list[Event]:
    if not state.exists or state.deleted:
        raise _unknown(state)
    if state.spec == spec:
        return []  # the same rule again: nothing happened
    return [AlertRuleChanged(rule_id=state.rule_id, **_fields(spec))]


def decide_delete(state: AlertRuleState) -> list[Event]:
    if not state.exists or state.deleted:
        raise _unknown(state)
    return [AlertRuleDeleted(rule_id=state.rule_id)]


def spec_of(event: AlertRuleCreated | AlertRuleChanged) -> AlertRuleSpec:
    return AlertRuleSpec(
        name=event.name,
        scope=event.scope,
        condition=event.condition,
        notify=event.notify,
        send_resolved=event.send_resolved,
        remind_every_s=event.remind_every_s,
    )


def evolve(state: AlertRuleState, event: Event) -> AlertRuleState:
    match event:
        case AlertRuleCreated() | AlertRuleChanged():
            state.exists = True
            state.spec = spec_of(event)
        case AlertRuleDeleted():
            state.deleted = True
        case _:
            pass
    return state
