"""The no-work baseline for bench.channel: the same uvicorn WebSocket stack and settings as
`obt serve`, answering hello with a welcome and every frame with a fixed ack (parsed with
orjson, no credentials, no log, no projections). What the load generator and the stack cost.

    python -m bench.bare_channel --port 9000
"""

from __future__ import annotations

import argparse

import orjson
import uvicorn
from starlette.types import Receive, Scope, Send

from obt.api.ws_protocol import ChannelWebSocketProtocol

WELCOME = '{"type":"welcome","protocol":1,"heartbeat_interval_s":10.0,"timeout_s":30.0}'
ACK_BODY = (
    '"status":200,"body":{"status":"online","models_wanted":true,"next_in_s":10.0,'
    '"server_time":"2026-12-04T12:00:00.000000Z"}}'
)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    greeted = False
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        frame = orjson.loads(message.get("text") or message.get("bytes") or b"null")
        if not greeted:
            greeted = True
            await send({"type": "websocket.send", "text": WELCOME})
            continue
        frame_id = orjson.dumps(frame.get("id")).decode()
        await send({"type": "websocket.send", "text": f'{{"type":"ack","id":{frame_id},{ACK_BODY}'})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        ws=ChannelWebSocketProtocol,
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,
        ws_ping_interval=120.0,
        ws_ping_timeout=120.0,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
