"""How the agent reaches the server: the channel when it opens, HTTP whenever it does not.

The loop talks to one ServerPort; this is it. Registration and deregistration are HTTP (the
channel has no frames for them). Heartbeats and model reports go over the channel when one is
open, else over HTTP; a frame whose channel fails before its ack is sent again, the same body
with the same seq, over HTTP (the server treats a repeated seq as already recorded). An upgrade
that fails (a proxy without WebSockets, a server without the channel) means HTTP until a
back-off (capped at 60 s) has passed; then the next heartbeat tries the channel again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agent.backoff import Backoff
from agent.channel import ACK_TIMEOUT_S, FrameHandler, Welcome
from agent.clock import Clock
from agent.errors import ChannelError, ChannelRefused
from agent.logs import get_logger, log_event
from agent.server import (
    HeartbeatReply,
    ObtClient,
    Registration,
    parse_heartbeat_reply,
    raise_for_answer,
)

TransportMode = Literal["auto", "http"]
CLOSE_CLEAN = 1000


class ChannelLike(Protocol):
    welcome: Welcome
    close_code: int | None
    close_reason: str

    @property
    def closed(self) -> bool: ...

    async def request(
        self, type_: str, body: dict[str, Any], timeout_s: float = ACK_TIMEOUT_S
    ) -> tuple[int, Any]: ...

    async def send(self, frame: dict[str, Any]) -> None: ...

    async def close(self, code: int = CLOSE_CLEAN) -> None: ...


# (client_id, secret, session_id, on_frame) -> an open channel, or ChannelRefused.
ChannelOpener = Callable[[str, str, str, FrameHandler], Awaitable[ChannelLike]]


@dataclass(frozen=True)
class TransportState:
    kind: Literal["channel", "http"]
    reason: str


class AgentTransport:
    def __init__(
        self,
        http: ObtClient,
        open_channel: ChannelOpener | None,
        clock: Clock,
        backoff: Backoff,
        log: logging.Logger | None = None,
        ack_timeout_s: float = ACK_TIMEOUT_S,
    ) -> None:
        self.http = http
        self.ack_timeout_s = ack_timeout_s
        self._open_channel = open_channel
        self._clock = clock
        self._backoff = backoff
        self._log = log or get_logger("transport")
        self._channel: ChannelLike | None = None
        self._retry_at = float("-inf")
        self._outbox: list[dict[str, Any]] = []
        self.on_command: FrameHandler = lambda frame: None
        self.state = TransportState(
            "http", "the channel is off (OBT_AGENT_TRANSPORT=http)" if not open_channel else ""
        )
        self.channels_opened = 0

    # -- the ServerPort the loop uses ------------------------------------------------------

    async def register(self, body: dict[str, Any], token: str) -> tuple[Registration, bool]:
        # A new registration means new credentials or a new session: start the channel over.
        await self._drop_channel("registering again")
        return await self.http.register(body, token)

    async def heartbeat(self, client_id: str, secret: str, body: dict[str, Any]) -> HeartbeatReply:
        channel = await self._channel_for(client_id, secret, str(body.get("session_id", "")))
        if channel is not None:
            answer = await self._over_channel(channel, "heartbeat", body)
            if answer is not None:
                reply = parse_heartbeat_reply(*answer)
                # A heartbeat answered over the channel proves it: only now is a
                # reconnect's back-off forgotten (a channel closed right after it opened,
                # "replaced" again and again, keeps backing off).
                self._backoff.reset()
                if reply.next_in_s is None and channel.welcome.heartbeat_interval_s:
                    reply = reply.model_copy(
                        update={"next_in_s": channel.welcome.heartbeat_interval_s}
                    )
                log_event(
                    self._log, logging.DEBUG, "heartbeat_sent", seq=body.get("seq"), via="channel"
                )
                return reply
        reply = await self.http.heartbeat(client_id, secret, body)
        log_event(self._log, logging.DEBUG, "heartbeat_sent", seq=body.get("seq"), via="http")
        return reply

    async def put_models(
        self,
        client_id: str,
        secret: str,
        models: list[dict[str, Any]],
        loaded: list[dict[str, Any]],
    ) -> dict[str, Any]:
        channel = self._channel if self._channel and not self._channel.closed else None
        if channel is not None:
            answer = await self._over_channel(
                channel, "models", {"models": models, "loaded": loaded}
            )
            if answer is not None:
                return answer[1] if isinstance(answer[1], dict) else {}
        return await self.http.put_models(client_id, secret, models, loaded)

    async def deregister(self, client_id: str, secret: str, timeout_s: float | None = None) -> None:
        """Over the channel when one is open (OBT's `deregister` frame, beyond the contract's
        list), else, or when the channel fails or the server does not know the frame, HTTP.
        The channel closes cleanly afterwards."""
        try:
            channel = self._channel if self._channel and not self._channel.closed else None
            if channel is not None:
                try:
                    status, doc = await channel.request(
                        "deregister", {}, timeout_s or self.ack_timeout_s
                    )
                except ChannelError:
                    status, doc = 0, None
                if 200 <= status < 300:
                    return
                if status not in (0, 422):  # 422: a server without the frame; 0: no ack
                    raise_for_answer(status, doc)
            await self.http.deregister(client_id, secret, timeout_s)
        finally:
            await self._drop_channel("stopping")

    # -- operations ------------------------------------------------------------------------

    async def send_operation_frame(self, frame: dict[str, Any], keep: bool) -> bool:
        """Send a progress/result frame; True when it went out. With `keep`, a frame that
        cannot go now waits for the next channel (results must arrive; progress may not)."""
        channel = self._channel if self._channel and not self._channel.closed else None
        if channel is not None:
            try:
                await channel.send(frame)
            except ChannelError:
                pass
            else:
                return True
        if keep:
            self._outbox.append(frame)
        return False

    async def close(self) -> None:
        await self._drop_channel("stopping")

    # -- the channel's life ----------------------------------------------------------------

    async def _channel_for(
        self, client_id: str, secret: str, session_id: str
    ) -> ChannelLike | None:
        if self._open_channel is None:
            return None
        channel = self._channel
        if channel is not None and not channel.closed:
            return channel
        if channel is not None:
            self._channel = None
            self._lost(f"closed by the server ({channel.close_code} {channel.close_reason})")
        if self._clock.monotonic() < self._retry_at:
            return None
        try:
            channel = await self._open_channel(client_id, secret, session_id, self._on_frame)
        except ChannelRefused as exc:
            self._lost(f"channel refused: {exc.reason}")
            return None
        self._channel = channel
        self.channels_opened += 1
        self._set_state("channel", "channel open")
        await self._flush_outbox(channel)
        return channel

    async def _over_channel(
        self, channel: ChannelLike, type_: str, body: dict[str, Any]
    ) -> tuple[int, Any] | None:
        """The ack's (status, body) for a 2xx; raises the HTTP path's error for an error
        ack; None when the channel failed first (the caller sends the same body by HTTP)."""
        try:
            status, doc = await channel.request(type_, body, self.ack_timeout_s)
        except ChannelError as exc:
            self._channel = None
            self._lost(f"{type_} frame not acked: {exc}")
            return None
        if status >= 400:
            if status in (401, 403, 404):
                # Credentials or the client are gone: the loop registers again, and the
                # channel opened with the old secret must not outlive that.
                await self._drop_channel(f"{type_} answered {status}")
            raise_for_answer(status, doc)
        return status, doc

    def _on_frame(self, frame: dict[str, Any]) -> None:
        if frame.get("type") in ("command", "cancel"):
            self.on_command(frame)
        elif frame.get("type") == "error":
            log_event(self._log, logging.WARNING, "channel_error_frame", frame=frame)

    async def _flush_outbox(self, channel: ChannelLike) -> None:
        while self._outbox:
            try:
                await channel.send(self._outbox[0])
            except ChannelError:
                return
            self._outbox.pop(0)

    async def _drop_channel(self, reason: str) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(CLOSE_CLEAN)
            self._retry_at = float("-inf")
            self._set_state("http", f"channel closed: {reason}")

    def _lost(self, reason: str) -> None:
        delay = self._backoff.next()
        self._retry_at = self._clock.monotonic() + delay
        self._set_state("http", f"{reason}; trying the channel again in {delay:.1f} s")

    def _set_state(self, kind: Literal["channel", "http"], reason: str) -> None:
        changed = kind != self.state.kind
        self.state = TransportState(kind, reason)
        level = logging.INFO if changed or kind == "channel" else logging.DEBUG
        log_event(self._log, level, "transport", kind=kind, reason=reason)
