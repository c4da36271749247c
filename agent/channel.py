"""One open agent channel: a WebSocket to the OBT server (contract "The agent channel").

`hello` goes first and `welcome` comes back; heartbeat and models frames are answered by
`ack` frames matched by id; command and cancel frames go to a callback. When the channel
closes, every request still waiting fails with ChannelLost, so its caller can send the same
body again another way: nothing sent is dropped in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from agent.errors import ChannelLost, ChannelRefused
from agent.logs import get_logger

PROTOCOL = 1
OPEN_TIMEOUT_S = 10.0
ACK_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 3.0
# Closing a channel that stopped acking is an error, not a clean close (1000/1001 read as
# "clean" in the server's ChannelClosed).
CLOSE_NO_ACK = 1011
FrameHandler = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Welcome:
    heartbeat_interval_s: float | None = None
    timeout_s: float | None = None


def channel_url(server_url: str, client_id: str) -> str:
    base = server_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return f"{base}/api/v1/agents/{client_id}/channel"


class Channel:
    """Use `await Channel.open(...)`; `request()` for acked frames, `send()` for the rest."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, welcome: Welcome) -> None:
        self._ws = ws
        self.welcome = welcome
        self._pending: dict[int, asyncio.Future[tuple[int, Any]]] = {}
        self._next_id = 0
        self._on_frame: FrameHandler = lambda frame: None
        self._reader: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._closing_with = 1000

    @classmethod
    async def open(
        cls,
        session: aiohttp.ClientSession,
        url: str,
        secret: str,
        session_id: str,
        on_frame: FrameHandler,
        timeout_s: float = OPEN_TIMEOUT_S,
    ) -> Channel:
        """Upgrade, say hello, read the welcome. Raises ChannelRefused on any failure."""
        ws = await _connect(session, url, secret, timeout_s)
        try:
            welcome = await _greet(ws, session_id, timeout_s)
        except BaseException:
            await ws.close()
            raise
        channel = cls(ws, welcome)
        channel._on_frame = on_frame
        channel._reader = asyncio.create_task(channel._read(), name="obt-channel-reader")
        return channel

    @staticmethod
    async def probe(
        session: aiohttp.ClientSession, url: str, secret: str, timeout_s: float = OPEN_TIMEOUT_S
    ) -> None:
        """Upgrade and close at once, without a hello, so the server records nothing (doctor).
        Raises ChannelRefused saying why when the upgrade fails."""
        ws = await _connect(session, url, secret, timeout_s)
        await ws.close()

    @property
    def closed(self) -> bool:
        return self._reader is None or self._reader.done()

    async def request(
        self, type_: str, body: dict[str, Any], timeout_s: float = ACK_TIMEOUT_S
    ) -> tuple[int, Any]:
        """Send a frame that the server acks; returns the ack's (status, body)."""
        if self.closed:
            raise self._lost()
        self._next_id += 1
        frame_id = self._next_id
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._pending[frame_id] = future
        try:
            await self._send({"type": type_, "id": frame_id, "body": body})
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            # A channel that stops answering is as good as gone: close it, so the caller's
            # fallback and the next reconnect start from a clean state.
            await self.close(code=CLOSE_NO_ACK)
            raise ChannelLost(f"no ack to {type_} {frame_id} within {timeout_s:g} s") from None
        finally:
            self._pending.pop(frame_id, None)

    async def send(self, frame: dict[str, Any]) -> None:
        """Send a frame that gets no ack (progress, result). Raises ChannelLost."""
        if self.closed:
            raise self._lost()
        await self._send(frame)

    async def close(self, code: int = 1000) -> None:
        # aiohttp first wakes the reader, whose own close would otherwise send 1000 first.
        self._closing_with = code
        with contextlib.suppress(Exception):
            await self._ws.close(code=code)
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _send(self, frame: dict[str, Any]) -> None:
        try:
            await self._ws.send_str(json.dumps(frame, separators=(",", ":")))
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            raise ChannelLost(f"send failed: {type(exc).__name__}: {exc}") from None

    async def _read(self) -> None:
        try:
            while True:
                message = await self._ws.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._dispatch(message.data)
                elif message.type is aiohttp.WSMsgType.CLOSE:
                    self.close_code = message.data
                    self.close_reason = str(message.extra or "")
                    break
                elif message.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    break
                elif message.type is aiohttp.WSMsgType.ERROR:
                    self.close_reason = f"error: {message.data}"
                    break
        finally:
            if self.close_code is None:
                self.close_code = self._ws.close_code
            lost = self._lost()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)
            with contextlib.suppress(Exception):
                await self._ws.close(code=self._closing_with)

    def _dispatch(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            return  # nothing to answer: the server has no use for our complaint
        if not isinstance(frame, dict):
            return
        if frame.get("type") == "ack":
            frame_id = frame.get("id")
            future = self._pending.get(frame_id) if isinstance(frame_id, int) else None
            if future is not None and not future.done():
                status = frame.get("status")
                future.set_result((status if isinstance(status, int) else 0, frame.get("body")))
            return
        try:
            self._on_frame(frame)
        except Exception:  # a bad command must not end the channel that carries heartbeats
            get_logger("channel").exception("a %s frame could not be handled", frame.get("type"))

    def _lost(self) -> ChannelLost:
        reason = self.close_reason or "closed"
        return ChannelLost(f"channel closed ({self.close_code}): {reason}", self.close_code)


async def _connect(
    session: aiohttp.ClientSession, url: str, secret: str, timeout_s: float
) -> aiohttp.ClientWebSocketResponse:
    try:
        async with asyncio.timeout(timeout_s):
            return await session.ws_connect(
                url,
                headers={"Authorization": f"Bearer {secret}"},
                autoping=True,
                compress=0,
                timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_S),
            )
    except aiohttp.WSServerHandshakeError as exc:
        raise ChannelRefused(f"the upgrade answered HTTP {exc.status}", exc.status) from None
    except TimeoutError:
        raise ChannelRefused(f"no upgrade within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise ChannelRefused(f"cannot connect: {type(exc).__name__}: {exc}") from None


async def _greet(ws: aiohttp.ClientWebSocketResponse, session_id: str, timeout_s: float) -> Welcome:
    hello = {"type": "hello", "protocol": PROTOCOL, "session_id": session_id}
    try:
        await ws.send_str(json.dumps(hello))
        async with asyncio.timeout(timeout_s):
            message = await ws.receive()
    except TimeoutError:
        raise ChannelRefused(f"no welcome within {timeout_s:g} s") from None
    except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
        raise ChannelRefused(f"hello failed: {type(exc).__name__}: {exc}") from None
    if message.type is not aiohttp.WSMsgType.TEXT:
        detail = f" {message.data} {message.extra or ''}".rstrip()
        raise ChannelRefused(f"closed instead of a welcome:{detail}")
    try:
        frame = json.loads(message.data)
    except ValueError:
        frame = None
    if not isinstance(frame, dict) or frame.get("type") != "welcome":
        raise ChannelRefused(f"expected a welcome, got {str(message.data)[:120]}")
    if frame.get("protocol") != PROTOCOL:
        raise ChannelRefused(f"the server speaks protocol {frame.get('protocol')}, not {PROTOCOL}")
    return Welcome(
        heartbeat_interval_s=_positive(frame.get("heartbeat_interval_s")),
        timeout_s=_positive(frame.get("timeout_s")),
    )


def _positive(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None
