"""The generic JSON webhook, signed: `X-OBT-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<body>">` keyed by the webhook's secret, and `X-OBT-Dedupe-Key`. 2xx is delivered."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import aiohttp
import orjson

from obt.notify import DeliveryFailed, Notice, Target

TIMEOUT_S = 10.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookNotifier:
    def __init__(self, *, unix_time: Callable[[], float] = time.time) -> None:
        self._unix_time = unix_time
        self._session: aiohttp.ClientSession | None = None

    async def send(self, target: Target, notice: Notice) -> None:
        body = orjson.dumps(notice.body, option=orjson.OPT_SORT_KEYS)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "OBT alerts",
            "X-OBT-Dedupe-Key": notice.dedupe_key,
            "X-OBT-Signature": signature(target.secret or "", int(self._unix_time()), body),
        }
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        try:
            async with self._session.post(target.url, data=body, headers=headers) as answer:
                if not 200 <= answer.status < 300:
                    raise DeliveryFailed(f"HTTP {answer.status}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # The message may quote the url, and a webhook url often carries a token.
            text = str(exc).replace(target.url, target.label)
            raise DeliveryFailed(f"{type(exc).__name__}: {text}"[:300]) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
