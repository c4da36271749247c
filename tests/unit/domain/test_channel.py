"""The channel's rules on the client aggregate: who may open one, what open and close record."""

from __future__ import annotations

import pytest

from obt.domain import channel as rules
from obt.domain.client import ClientRuleViolation, ClientState
from obt.domain.events import ChannelClosed, ChannelOpened
from obt.domain.liveness import Status


def registered(status: Status = Status.ONLINE) -> ClientState:
    return ClientState(client_id="c1", registered=True, status=status, session_id="s1")


def test_a_channel_opens_for_the_registered_session() -> None:
    events = rules.decide_open_channel(
        registered(), channel_id="ch1", session_id="s1", remote="10.0.0.5:4000"
    )
    assert events == [
        ChannelOpened(client_id="c1", channel_id="ch1", session_id="s1", remote="10.0.0.5:4000")
    ]


def test_a_new_channel_closes_the_one_it_replaces_first() -> None:
    events = rules.decide_open_channel(
        registered(Status.OFFLINE), channel_id="ch2", session_id="s1", remote=None, replacing="ch1"
    )
    assert events == [
        ChannelClosed(client_id="c1", channel_id="ch1", reason="replaced", code=4000),
        ChannelOpened(client_id="c1", channel_id="ch2", session_id="s1", remote=None),
    ]


@pytest.mark.parametrize(
    ("state", "session", "code"),
    [
        (ClientState(client_id="c1"), "s1", "unknown_client"),
        (registered(Status.DECOMMISSIONED), "s1", "client_decommissioned"),
        (registered(), "s2", "session_mismatch"),
        (registered(Status.STOPPED), "s1", "client_stopped"),
    ],
)
def test_a_channel_is_refused_as_a_heartbeat_of_that_session_would_be(
    state: ClientState, session: str, code: str
) -> None:
    with pytest.raises(ClientRuleViolation) as refused:
        rules.decide_open_channel(state, channel_id="ch1", session_id=session, remote=None)
    assert refused.value.code == code


def test_a_close_is_recorded_with_its_reason_and_code() -> None:
    events = rules.decide_close_channel(registered(), channel_id="ch1", reason="idle", code=4001)
    assert events == [ChannelClosed(client_id="c1", channel_id="ch1", reason="idle", code=4001)]
    assert (
        rules.decide_close_channel(
            ClientState(client_id="gone"), channel_id="ch1", reason="clean", code=1000
        )
        == []
    )
    with pytest.raises(ValueError, match="unknown close reason"):
        rules.decide_close_channel(registered(), channel_id="ch1", reason="bored", code=None)
