"""The open agent channels of this server: one per client, idle closes, sends with a bound.

It is the `AgentLink` (obt/commands/agent_link.py) that fleet operations use to reach agents:
`send` a command or cancel frame, `subscribe` to the progress and result frames agents send.
The WebSocket loop itself lives in obt/api/channel.py; this module only keeps track.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import orjson

from obt.commands.agent_link import FrameHandler
from obt.errors import AgentBusy, AgentNotConnected

log = logging.getLogger(__name__)

REPLACED = (4000, "replaced")
IDLE = (4001, "idle")
SERVER_STOPPING = (1001, "server stopping")

SendText = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]


class AgentChannel:
    """One open channel. Small on purpose: a server holds tens of thousands of them."""

    __slots__ = (
        "_close",
        "_send_text",
        "channel_id",
        "client_id",
        "closing",
        "last_frame_at",
        "pending_sends",
        "session_id",
    )

    def __init__(
        self,
        client_id: str,
        channel_id: str,
        session_id: str,
        send_text: SendText,
        close: Close,
        now: float,
    ) -> None:
        self.client_id = client_id
        self.channel_id = channel_id
        self.session_id = session_id
        self._send_text = send_text
        self._close = close
        self.last_frame_at = now
        self.pending_sends = 0
        # Why the server ends this channel (replaced, idle, server_stopping); None while open
        # or when the agent (or the network) ended it.
        self.closing: str | None = None

    async def send_text(self, text: str) -> None:
        await self._send_text(text)

    async def close(self, reason: str, code: int, text: str) -> None:
        if self.closing is None:
            self.closing = reason
        with contextlib.suppress(Exception):  # already closed by the peer: nothing to do
            await self._close(code, text)


class ChannelRegistry:
    """Every open channel of this server, by client id."""

    def __init__(
        self,
        *,
        idle_timeout_s: float,
        max_pending_sends: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.max_pending_sends = max_pending_sends
        self.clock = clock
        self._channels: dict[str, AgentChannel] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._handlers: list[FrameHandler] = []
        self._emptied = asyncio.Event()
        self._emptied.set()

    # ------------------------------------------------------------ what the channel loop uses

    def __len__(self) -> int:
        return len(self._channels)

    def __iter__(self) -> Iterator[AgentChannel]:
        return iter(list(self._channels.values()))

    def current(self, client_id: str) -> AgentChannel | None:
        return self._channels.get(client_id)

    @contextlib.asynccontextmanager
    async def opening(self, client_id: str) -> AsyncIterator[None]:
        """Held while one channel of a client is recorded and attached: two hellos racing
        each see the other's channel as the one they replace, never the same old one."""
        lock = self._opening.get(client_id)
        if lock is None:
            lock = self._opening[client_id] = asyncio.Lock()
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._opening.get(client_id) is lock:
                del self._opening[client_id]

    def attach(self, channel: AgentChannel) -> AgentChannel | None:
        """Make `channel` the client's channel; returns the one it replaces (still open)."""
        old = self._channels.get(channel.client_id)
        self._channels[channel.client_id] = channel
        self._emptied.clear()
        if old is not None:
            old.closing = "replaced"
        return old

    def detach(self, channel: AgentChannel) -> None:
        if self._channels.get(channel.client_id) is channel:
            del self._channels[channel.client_id]
            if not self._channels:
                self._emptied.set()

    async def dispatch(self, client_id: str, frame: Mapping[str, Any]) -> None:
        """Hand an agent's `progress`/`result` frame to the subscribers."""
        for handler in self._handlers:
            try:
                await handler(client_id, frame)
            except Exception:
                log.exception("a channel frame handler failed on a frame from %s", client_id)

    # ------------------------------------------------------------ AgentLink

    def connected(self, client_id: str) -> bool:
        return client_id in self._channels

    async def send(self, client_id: str, frame: Mapping[str, Any]) -> None:
        channel = self._channels.get(client_id)
        if channel is None or channel.closing is not None:
            raise AgentNotConnected(client_id)
        if channel.pending_sends >= self.max_pending_sends:
            raise AgentBusy(client_id)
        channel.pending_sends += 1
        try:
            await channel.send_text(orjson.dumps(frame).decode())
        except AgentBusy:
            raise
        except Exception:
            raise AgentNotConnected(client_id) from None
        finally:
            channel.pending_sends -= 1

    def subscribe(self, handler: FrameHandler) -> None:
        self._handlers.append(handler)

    # ------------------------------------------------------------ background and shutdown

    def idle(self, now: float) -> list[AgentChannel]:
        """The channels that sent nothing for longer than the idle timeout."""
        horizon = now - self.idle_timeout_s
        return [c for c in self._channels.values() if c.last_frame_at < horizon]

    async def close_idle(self) -> int:
        idle = self.idle(self.clock())
        for channel in idle:
            await channel.close("idle", *IDLE)
        return len(idle)

    async def run(self, stop: asyncio.Event, tick_s: float = 1.0) -> None:
        """Close idle channels until `stop` is set: one sweep a tick, not a timer each."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_s)
            if not stop.is_set():
                closed = await self.close_idle()
                if closed:
                    log.info("closed %d idle channel(s)", closed)

    async def close_all(self, timeout_s: float = 5.0) -> int:
        """At shutdown: close every channel with "server stopping" and wait (bounded) until
        each one's loop has recorded its end, so that happens before the store closes."""
        channels = list(self._channels.values())
        await asyncio.gather(
            *(c.close("server_stopping", *SERVER_STOPPING) for c in channels),
            return_exceptions=True,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._emptied.wait(), timeout=timeout_s)
        if self._channels:
            log.warning("%d channel(s) did not finish closing in time", len(self._channels))
        return len(channels)
