"""The agent channel's rules on the client aggregate: who may open one, what opening and closing
record. Pure, like obt/domain/client.py: the transport (obt/api) does the I/O.
"""

from __future__ import annotations

from obt.domain.client import ClientState, require_current_session
from obt.domain.events import CHANNEL_CLOSE_REASONS, ChannelClosed, ChannelOpened, Event


def decide_open_channel(
    state: ClientState,
    *,
    channel_id: str,
    session_id: str,
    remote: str | None,
    replacing: str | None = None,
) -> list[Event]:
    """Open a channel for the registered session; `replacing` names the client's channel
    still open on this server, which the new one closes ("replaced") in the same append."""
    require_current_session(state, session_id)
    cid = state.client_id
    events: list[Event] = []
    if replacing is not None:
        events.append(
            ChannelClosed(client_id=cid, channel_id=replacing, reason="replaced", code=4000)
        )
    events.append(
        ChannelOpened(client_id=cid, channel_id=channel_id, session_id=session_id, remote=remote)
    )
    return events


def decide_close_channel(
    state: ClientState, *, channel_id: str, reason: str, code: int | None
) -> list[Event]:
    """Record a channel's end. Nothing for a client that is gone from the registry."""
    if reason not in CHANNEL_CLOSE_REASONS:
        raise ValueError(f"unknown close reason {reason!r}")
    if not state.registered:
        return []
    return [
        ChannelClosed(client_id=state.client_id, channel_id=channel_id, reason=reason, code=code)
    ]
