"""Every transition of the client aggregate, with time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from obt.domain import client as rules
from obt.domain.client import ClientRuleViolation, ClientState, InstalledModel, LoadedModel, evolve
from obt.domain.events import (
    ClientDecommissioned,
    ClientDeregistered,
    ClientRecovered,
    ClientRegistered,
    ClientReregistered,
    ClientSecretRevoked,
    ClientTimedOut,
    Event,
    HeartbeatReceived,
    ModelAdded,
    ModelChanged,
    ModelLoaded,
    ModelRemoved,
    ModelUnloaded,
    OllamaBecameAvailable,
    OllamaBecameUnavailable,
    event_from_data,
)
from obt.domain.liveness import LivenessPolicy, Status

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = LivenessPolicy(interval_s=10, timeout_s=30)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def apply(state: ClientState, events: list[Event], at: datetime) -> ClientState:
    for e in events:
        evolve(state, e, at)
        state.version += 1
    return state


def register(
    state: ClientState | None = None,
    *,
    session: str = "s1",
    reachable: bool = True,
    secret: str | None = "hash1",
    at: datetime = T0,
) -> tuple[ClientState, list[Event]]:
    state = state or ClientState(client_id="c1")
    events = rules.decide_register(
        state,
        hostname="gpu-1",
        platform={"system": "Linux", "release": "6.1", "machine": "x86_64"},
        agent_version="0.1.0",
        labels={"rack": "a"},
        ollama={
            "installed": True,
            "version": "0.5.1",
            "base_url": "http://x",
            "reachable": reachable,
        },
        session_id=session,
        new_secret_sha256=secret,
    )
    return apply(state, events, at), events


def heartbeat(
    state: ClientState, seq: int, at: datetime, *, reachable: bool = True, session: str = "s1"
) -> list[Event]:
    events = rules.decide_heartbeat(
        state,
        seq=seq,
        session_id=session,
        sent_at=at + timedelta(seconds=2),
        ollama={
            "reachable": reachable,
            "version": "0.5.1",
            "latency_ms": 3,
            "error": None if reachable else "connection refused",
        },
        models_digest=None,
        now=at,
    )
    apply(state, events, at)
    return events


def test_first_registration_needs_the_enrollment_token() -> None:
    with pytest.raises(ClientRuleViolation) as err:
        register(secret=None)
    assert err.value.code == "not_registered"


@pytest.mark.parametrize(("reachable", "status"), [(True, Status.ONLINE), (False, Status.DEGRADED)])
def test_first_registration_sets_status_from_ollama(reachable: bool, status: Status) -> None:
    state, events = register(reachable=reachable)
    assert [type(e) for e in events] == [ClientRegistered]
    assert state.registered and state.status is status
    assert state.last_seen == T0  # the timeout clock starts at registration
    assert state.secret_sha256 == "hash1"


def test_reregistration_with_a_new_session_is_recorded() -> None:
    state, _ = register()
    state, events = register(state, session="s2", secret=None, at=s(5))
    assert [type(e) for e in events] == [ClientReregistered]
    assert events[0].previous_session_id == "s1"  # type: ignore[attr-defined]
    assert state.session_id == "s2" and state.secret_sha256 == "hash1"


def test_a_retried_registration_changes_nothing() -> None:
    state, _ = register()
    _, events = register(state, session="s1", secret=None, at=s(1))
    assert events == []


def test_reregistration_with_the_enrollment_token_rotates_the_secret() -> None:
    state, _ = register()
    state, events = register(state, session="s2", secret="hash2", at=s(5))
    assert events[0].secret_sha256 == "hash2"  # type: ignore[attr-defined]
    assert state.secret_sha256 == "hash2"


def test_heartbeat_with_ollama_reachable_keeps_online() -> None:
    state, _ = register()
    events = heartbeat(state, 1, s(10))
    assert [type(e) for e in events] == [HeartbeatReceived]
    assert state.status is Status.ONLINE and state.last_seen == s(10) and state.last_seq == 1
    assert events[0].clock_skew_ms == 2000  # type: ignore[attr-defined]


def test_heartbeat_with_ollama_down_degrades_and_back() -> None:
    state, _ = register()
    events = heartbeat(state, 1, s(10), reachable=False)
    assert [type(e) for e in events] == [HeartbeatReceived, OllamaBecameUnavailable]
    assert events[1].error == "connection refused"  # type: ignore[attr-defined]
    assert state.status is Status.DEGRADED
    events = heartbeat(state, 2, s(20), reachable=True)
    assert [type(e) for e in events] == [HeartbeatReceived, OllamaBecameAvailable]
    assert state.status is Status.ONLINE


def test_replayed_heartbeat_is_idempotent_and_an_older_one_refused() -> None:
    state, _ = register()
    heartbeat(state, 5, s(10))
    assert heartbeat(state, 5, s(11)) == []
    with pytest.raises(ClientRuleViolation) as err:
        heartbeat(state, 4, s(12))
    assert err.value.code == "stale_seq"


def test_heartbeat_from_another_session_must_register_first() -> None:
    state, _ = register()
    with pytest.raises(ClientRuleViolation) as err:
        heartbeat(state, 1, s(10), session="other")
    assert err.value.code == "session_mismatch"


def test_heartbeat_from_unknown_client_is_refused() -> None:
    with pytest.raises(ClientRuleViolation) as err:
        heartbeat(ClientState(client_id="nobody"), 1, s(1))
    assert err.value.code == "unknown_client"


def model(name: str, digest: str = "sha256:aaa", size: int = 100) -> InstalledModel:
    return InstalledModel(name=name, digest=digest, size=size, family="llama", quantization="Q4_0")


def test_model_reports_are_diffed() -> None:
    state, _ = register()
    report = rules.decide_report_models
    events = report(state, installed=[model("a"), model("b")], loaded=[])
    assert [type(e) for e in events] == [ModelAdded, ModelAdded]
    apply(state, events, s(1))
    events = report(
        state,
        installed=[model("a", digest="sha256:bbb", size=120), model("c")],
        loaded=[LoadedModel(name="a", digest="sha256:bbb", size=120, size_vram=60)],
    )
    assert [type(e) for e in events] == [ModelRemoved, ModelChanged, ModelAdded, ModelLoaded]
    changed = events[1]
    assert isinstance(changed, ModelChanged) and changed.previous_digest == "sha256:aaa"
    apply(state, events, s(2))
    assert set(state.installed) == {"a", "c"} and set(state.loaded) == {"a"}
    # Only expires_at moved: nothing to record.
    same = LoadedModel(name="a", digest="sha256:bbb", size=120, size_vram=60, expires_at="later")
    assert report(state, installed=[model("a", "sha256:bbb", 120), model("c")], loaded=[same]) == []
    events = report(state, installed=[model("a", "sha256:bbb", 120), model("c")], loaded=[])
    assert [type(e) for e in events] == [ModelUnloaded]


def test_models_digest_follows_the_reported_models() -> None:
    state, _ = register()
    empty = state.models_digest
    apply(state, rules.decide_report_models(state, installed=[model("a")], loaded=[]), s(1))
    assert state.models_digest != empty


def test_timeout_after_silence_and_recovery() -> None:
    state, _ = register()
    heartbeat(state, 1, s(10))
    assert rules.decide_timeout(state, now=s(40), policy=POLICY, server_started_at=None) == []
    events = rules.decide_timeout(state, now=s(40.5), policy=POLICY, server_started_at=None)
    assert len(events) == 1
    timed_out = events[0]
    assert isinstance(timed_out, ClientTimedOut)
    assert timed_out.last_seen == s(10) and timed_out.offline_since == s(20)
    apply(state, events, s(40.5))
    assert state.status is Status.OFFLINE
    # Once per silence: an offline client does not time out again.
    assert rules.decide_timeout(state, now=s(100), policy=POLICY, server_started_at=None) == []
    events = heartbeat(state, 2, s(120))
    assert [type(e) for e in events] == [HeartbeatReceived, ClientRecovered]
    assert events[1].offline_since == s(20)  # type: ignore[attr-defined]
    assert state.status is Status.ONLINE and state.offline_since is None


def test_reregistration_after_timeout_recovers() -> None:
    state, _ = register()
    apply(
        state, rules.decide_timeout(state, now=s(31), policy=POLICY, server_started_at=None), s(31)
    )
    state, events = register(state, session="s2", secret=None, at=s(60))
    assert [type(e) for e in events] == [ClientReregistered, ClientRecovered]
    assert state.status is Status.ONLINE


def test_startup_grace_window_delays_timeouts() -> None:
    state, _ = register()
    started = s(100)  # the server was down; the client's last_seen is old
    assert rules.decide_timeout(state, now=s(110), policy=POLICY, server_started_at=started) == []
    assert rules.decide_timeout(state, now=s(130), policy=POLICY, server_started_at=started) == []
    events = rules.decide_timeout(state, now=s(130.1), policy=POLICY, server_started_at=started)
    assert [type(e) for e in events] == [ClientTimedOut]


def test_deregistration_stops_and_is_idempotent() -> None:
    state, _ = register()
    events = rules.decide_deregister(state, session_id="s1", reason="SIGTERM")
    assert [type(e) for e in events] == [ClientDeregistered]
    apply(state, events, s(5))
    assert state.status is Status.STOPPED
    assert rules.decide_deregister(state, session_id="s1", reason="again") == []
    # A stopped client is not watched for timeouts.
    assert rules.decide_timeout(state, now=s(500), policy=POLICY, server_started_at=None) == []


def test_decommission_revokes_and_refuses_further_commands() -> None:
    state, _ = register()
    events = rules.decide_decommission(state, reason="retired")
    assert [type(e) for e in events] == [ClientDecommissioned]
    apply(state, events, s(5))
    assert state.status is Status.DECOMMISSIONED and state.secret_sha256 is None
    assert rules.decide_decommission(state, reason="again") == []
    for attempt in (
        lambda: heartbeat(state, 1, s(6)),
        lambda: register(state, session="s9", secret="new"),
        lambda: rules.decide_report_models(state, installed=[], loaded=[]),
    ):
        with pytest.raises(ClientRuleViolation) as err:
            attempt()
        assert err.value.code == "client_decommissioned"


def test_revoke_secret() -> None:
    state, _ = register()
    events = rules.decide_revoke_secret(state, reason="leaked")
    assert [type(e) for e in events] == [ClientSecretRevoked]
    apply(state, events, s(1))
    assert state.secret_sha256 is None
    assert rules.decide_revoke_secret(state, reason="again") == []


def test_events_round_trip_through_plain_data() -> None:
    state, _ = register()
    heartbeat(state, 1, s(10))
    events = rules.decide_timeout(state, now=s(45), policy=POLICY, server_started_at=None)
    for event in events:
        assert event_from_data(event.type_name(), event.to_data()) == event


def test_snapshot_round_trip() -> None:
    state, _ = register()
    apply(state, rules.decide_report_models(state, installed=[model("a")], loaded=[]), s(1))
    assert ClientState.from_snapshot(state.to_snapshot()) == state


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="longer than the interval"):
        LivenessPolicy(interval_s=10, timeout_s=5)


def test_models_are_wanted_until_a_report_is_held() -> None:
    from obt.domain.digest import models_digest as digest_of
    from obt.domain.events import ModelsReported

    state, _ = register()
    empty = digest_of((), ())
    # No report held yet: wanted even when the agent's set is empty.
    assert rules.models_wanted(state, empty)
    events = rules.decide_report_models(state, installed=[], loaded=[])
    assert [type(e) for e in events] == [ModelsReported]
    apply(state, events, s(1))
    assert not rules.models_wanted(state, empty)
    assert rules.decide_report_models(state, installed=[], loaded=[]) == []
    assert rules.models_wanted(state, digest_of([("a", "sha256:1")], ()))
    assert rules.models_wanted(state, None)
