"""The alert-rule aggregate: what a rule may say, and the events its decisions produce."""

from __future__ import annotations

from typing import Any

import pytest

from obt.domain import alerts as rules
from obt.domain.alerts import AlertRuleState, AlertRuleViolation, RuleScope
from obt.domain.events import AlertRuleChanged, AlertRuleCreated, AlertRuleDeleted


def spec(**overrides: Any) -> rules.AlertRuleSpec:
    fields: dict[str, Any] = {
        "name": "hosts down",
        "scope": {},
        "condition": {"kind": "status", "statuses": ["offline"], "for_s": 60},
        "notify": {"urls": ["ntfy://obt-alerts"], "webhooks": []},
    }
    fields.update(overrides)
    return rules.validate_rule(**fields)


def test_a_rule_is_normalised_with_the_contract_defaults() -> None:
    s = spec(condition={"kind": "status", "statuses": ["stopped", "offline", "offline"]})
    assert s.condition == {"kind": "status", "statuses": ["offline", "stopped"], "for_s": 0.0}
    assert s.scope == {"client_ids": [], "labels": {}}
    assert s.send_resolved is True
    assert s.remind_every_s is None


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"name": "  "}, "name"),
        ({"condition": {"kind": "cpu"}}, "condition.kind"),
        ({"condition": {"kind": "status", "statuses": []}}, "at least one status"),
        ({"condition": {"kind": "status", "statuses": ["unknown"]}}, "server's own outage"),
        ({"condition": {"kind": "status", "statuses": ["online"]}}, "cannot be alerted on"),
        ({"condition": {"kind": "status", "statuses": ["offline"], "for_s": -1}}, "for_s"),
        ({"condition": {"kind": "model_missing"}}, "condition.model"),
        ({"notify": {"urls": ["not a url"]}}, "Apprise URL"),
        ({"notify": {"webhooks": [{"url": "ftp://x", "secret": "s"}]}}, "http"),
        ({"notify": {"webhooks": [{"url": "http://[::1", "secret": "s"}]}}, "http"),
        ({"notify": {"webhooks": [{"url": "https://hooks.example/x"}]}}, "secret"),
        ({"notify": {"urls": [f"json://h/{i}" for i in range(21)]}}, "at most 20"),
        ({"remind_every_s": 5}, "remind_every_s"),
        ({"scope": {"client_ids": ["a", "a"]}}, "once"),
    ],
)
def test_invalid_rules_are_refused_with_a_reason(overrides: dict[str, Any], says: str) -> None:
    with pytest.raises(AlertRuleViolation) as refused:
        spec(**overrides)
    assert refused.value.code == "invalid_alert_rule"
    assert says in str(refused.value)


def test_create_change_delete_and_evolve() -> None:
    state = AlertRuleState("r1")
    created = rules.decide_create(state, spec())
    assert created == [AlertRuleCreated(rule_id="r1", **_fields(spec()))]
    rules.evolve(state, created[0])
    with pytest.raises(AlertRuleViolation, match="exists"):
        rules.decide_create(state, spec())

    assert rules.decide_change(state, spec()) == []  # the same rule again changes nothing
    changed = rules.decide_change(state, spec(name="renamed"))
    assert isinstance(changed[0], AlertRuleChanged) and changed[0].name == "renamed"
    rules.evolve(state, changed[0])
    assert state.spec is not None and state.spec.name == "renamed"

    deleted = rules.decide_delete(state)
    assert deleted == [AlertRuleDeleted(rule_id="r1")]
    rules.evolve(state, deleted[0])
    for decide in (lambda: rules.decide_delete(state), lambda: rules.decide_change(state, spec())):
        with pytest.raises(AlertRuleViolation) as refused:
            decide()
        assert refused.value.code == "unknown_alert_rule"


def test_scope_matches_ids_and_labels() -> None:
    every = RuleScope.of({})
    assert every.covers("a", {})
    by_label = RuleScope.of({"labels": {"rack": "1"}})
    assert by_label.covers("a", {"rack": "1", "gpu": "yes"})
    assert not by_label.covers("a", {"rack": "2"})
    both = RuleScope.of({"client_ids": ["a"], "labels": {"rack": "1"}})
    assert both.covers("a", {"rack": "1"})
    assert not both.covers("b", {"rack": "1"})
    assert not both.covers("a", {})


def _fields(s: rules.AlertRuleSpec) -> dict[str, Any]:
    return {
        "name": s.name,
        "scope": s.scope,
        "condition": s.condition,
        "notify": s.notify,
        "send_resolved": s.send_resolved,
        "remind_every_s": s.remind_every_s,
    }
