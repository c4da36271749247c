"""uvicorn's httptools protocol with a bound on the request head (request line + headers).

httptools buffers a header block of any size and uvicorn sets no limit, so one client could
make the server hold megabytes per connection. Past `MAX_HEAD_BYTES` still unparsed, the
connection gets 431 and is closed (nginx refuses far smaller heads by default).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
_BODY = b'{"code":"headers_too_large","detail":"the request line and headers exceed 65536 bytes"}'
_ANSWER = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # A head completed within this chunk reset the count: only an unfinished head is judged.
        over = self._reading_head and self._head_bytes > MAX_HEAD_BYTES
        if over and not self.transport.is_closing():
            self.transport.write(_ANSWER)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_head = True
        super().on_message_complete()
