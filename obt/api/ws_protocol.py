"""uvicorn's WebSocket protocol (websockets, sans-I/O) as the agent channel needs it.

Three changes: a small write buffer, so an agent that stops reading holds back its channel's
sends (and so the server's memory) sooner; and at shutdown each channel is closed with 1001
"server stopping" (uvicorn sends a bare 1012), which the channel records as
ChannelClosed(server_stopping) before the store closes (uvicorn waits for the channel loops
before the lifespan's shutdown); and an upgrade refused with a status is not logged as an
error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from obt.api.channel import SERVER_STOPPING_TEXT

WRITE_HIGH_WATER = 16 * 1024  # asyncio's default is 64 KiB per connection
GOING_AWAY = 1001


class ChannelWebSocketProtocol(WebSocketsSansIOProtocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if isinstance(transport, asyncio.WriteTransport):
            transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    async def send(self, message: Any) -> None:
        await super().send(message)
        kind = message["type"]
        if kind == "websocket.send":
            return
        if kind == "websocket.accept" and self.handshake_complete:
            # The handshake's request and response (and their headers) are not needed again:
            # a server holding tens of thousands of channels should not keep them.
            del self.request, self.response
        elif kind == "websocket.http.response.body" and not message.get("more_body"):
            # An upgrade answered with an HTTP status (401, 403 ...) is a finished exchange:
            # without this, uvicorn logs "returned without completing handshake" for each.
            self.handshake_complete = True

    def shutdown(self) -> None:
        if not self.handshake_complete or self.close_sent or self.initial_response:
            super().shutdown()
            return
        self.stop_keepalive()
        self.queue.put_nowait(
            {"type": "websocket.disconnect", "code": GOING_AWAY, "reason": SERVER_STOPPING_TEXT}
        )
        self.conn.send_close(GOING_AWAY, SERVER_STOPPING_TEXT)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()
