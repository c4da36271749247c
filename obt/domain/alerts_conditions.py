"""What an alert rule means for one client at one moment, and what follows: fire, remind, resolve.

Pure. The evaluator job (obt/jobs/alerts.py) gathers the facts (rules, each client's status and
models, the firing state of every (rule, client) pair) and appends what `decide_alert` says.

A condition answers True (it holds, since a moment), False (it does not) or None (cannot be
judged now: the client's status is *unknown* because OBT itself was not watching, or its
models are not known). None neither fires nor resolves: a server restart never sets off an
alert, and never clears one that was firing before it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from obt.domain.alerts import RuleScope
from obt.domain.events import AlertFired, AlertReminded, AlertResolved, Event

WATCHED_STATUSES = frozenset({"online", "degraded"})  # a host whose model report is current


@dataclass(frozen=True, slots=True)
class ClientView:
    client_id: str
    hostname: str | None
    status: str
    status_since: datetime
    labels: Mapping[str, str]
    models: Mapping[str, str] | None  # name -> digest; None when no report is held


@dataclass(frozen=True, slots=True)
class RuleView:
    rule_id: str
    name: str
    scope: RuleScope
    condition: Mapping[str, Any]
    send_resolved: bool
    remind_every_s: float | None

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> RuleView:
        return cls(
            rule_id=doc["id"],
            name=doc["name"],
            scope=RuleScope.of(doc.get("scope") or {}),
            condition=doc["condition"],
            send_resolved=bool(doc.get("send_resolved", True)),
            remind_every_s=doc.get("remind_every_s"),
        )


@dataclass(frozen=True, slots=True)
class Firing:
    """A (rule, client) pair's alert stream as the alerts read model knows it."""

    version: int = 0  # of the stream alert-<rule>-<client>; appends expect exactly this
    firings: int = 0  # how many times it fired: the next firing is number firings + 1
    open_key: str | None = None  # the dedupe key of the firing not yet resolved
    last_notice_at: datetime | None = None  # fired or last reminded


@dataclass(frozen=True, slots=True)
class Verdict:
    holds: bool | None
    since: datetime | None = None  # when it began to hold (status conditions know it)
    detail: str = ""


def dedupe_key(rule_id: str, client_id: str, firing: int) -> str:
    """One key per (rule, client, firing): receivers can drop a notice they already have."""
    return f"{rule_id}/{client_id}/{firing}"


def _model_names(wanted: str) -> set[str]:
    # Ollama names a model without a tag "<name>:latest".
    return {wanted} if ":" in wanted else {wanted, f"{wanted}:latest"}


def majority_digests(hosts: Iterable[ClientView], model: str | None) -> dict[str, tuple[str, ...]]:
    """Per model name, the digest(s) most hosts in scope hold (several on a tie)."""
    counts: dict[str, Counter[str]] = {}
    for host in hosts:
        if host.models is None or host.status not in WATCHED_STATUSES:
            continue
        for name, digest in host.models.items():
            if model is None or name in _model_names(model):
                counts.setdefault(name, Counter())[digest] += 1
    out = {}
    for name, counter in counts.items():
        if len(counter) > 1:
            top = max(counter.values())
            out[name] = tuple(sorted(d for d, n in counter.items() if n == top))
    return out  # only names with drift


def judge(rule: RuleView, client: ClientView, drift: Mapping[str, tuple[str, ...]]) -> Verdict:
    """Whether the rule's condition holds for the client (see the module's note on None)."""
    if client.status == "decommissioned" or not rule.scope.covers(client.client_id, client.labels):
        return Verdict(False)
    kind = rule.condition.get("kind")
    if kind == "status":
        if client.status == "unknown":
            return Verdict(None)
        if client.status in rule.condition.get("statuses", ()):
            return Verdict(True, client.status_since, f"{client.status}")
        return Verdict(False)
    if client.status not in WATCHED_STATUSES or client.models is None:
        return Verdict(None)  # an offline host's models are not current
    if kind == "model_missing":
        wanted = str(rule.condition.get("model"))
        if _model_names(wanted) & set(client.models):
            return Verdict(False)
        return Verdict(True, None, f"model {wanted} missing")
    if kind == "digest_drift":
        for name, majority in sorted(drift.items()):
            digest = client.models.get(name)
            # On a tie no digest is "the fleet's": every holder is drifting.
            if digest is not None and (len(majority) > 1 or digest not in majority):
                return Verdict(True, None, f"model {name} has digest {digest[:19]}")
        return Verdict(False)
    return Verdict(None)


def decide_alert(
    rule_id: str,
    rule: RuleView | None,
    client: ClientView,
    firing: Firing,
    verdict: Verdict,
    pending_since: datetime | None,
    now: datetime,
) -> list[Event]:
    """The events for one (rule, client) pair now: fired, reminded, resolved, or nothing.

    `rule` None means the rule was deleted. `pending_since` is when the evaluator first saw a
    condition hold that cannot say since when (model conditions).
    """
    if firing.open_key is not None:
        if rule is None or verdict.holds is False:
            reason = "rule_deleted" if rule is None else "cleared"
            return [
                AlertResolved(
                    rule_id=rule_id,
                    client_id=client.client_id,
                    dedupe_key=firing.open_key,
                    reason=reason,
                    status=client.status,
                    notify=rule is not None and rule.send_resolved,
                )
            ]
        if (
            rule.remind_every_s
            and firing.last_notice_at is not None
            and now >= firing.last_notice_at + timedelta(seconds=rule.remind_every_s)
        ):
            return [
                AlertReminded(
                    rule_id=rule.rule_id,
                    client_id=client.client_id,
                    dedupe_key=firing.open_key,
                    status=client.status,
                )
            ]
        return []
    if rule is None or verdict.holds is not True:
        return []
    since = verdict.since or pending_since or now
    for_s = float(rule.condition.get("for_s") or 0)
    if now < since + timedelta(seconds=for_s):
        return []
    number = firing.firings + 1
    return [
        AlertFired(
            rule_id=rule.rule_id,
            rule_name=rule.name,
            client_id=client.client_id,
            hostname=client.hostname,
            dedupe_key=dedupe_key(rule.rule_id, client.client_id, number),
            firing=number,
            condition=rule.condition.get("kind", ""),
            status=client.status,
            detail=verdict.detail,
            since=since,
        )
    ]
