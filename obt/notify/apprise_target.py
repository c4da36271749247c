"""Apprise: 100+ services by URL (ntfy://, slack://, discord://, mailto://, json://...).

Apprise's notify blocks (it uses requests, and retries an unreachable service for seconds), so
it runs on threads of its own, never on the event loop nor on the loop's default executor.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from obt.notify import DeliveryFailed, Notice, Target


def _notify(url: str, title: str, body: str) -> bool:
    import apprise  # the server's dependency; imported when a notice goes out

    sender = apprise.Apprise()
    if not sender.add(url):
        raise DeliveryFailed("Apprise does not understand this URL")
    return bool(sender.notify(title=title, body=body))


class AppriseNotifier:
    def __init__(self, threads: int = 8) -> None:
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None

    async def send(self, target: Target, notice: Notice) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="obt-apprise")
        loop = asyncio.get_running_loop()
        delivered = await loop.run_in_executor(
            self._pool, _notify, target.url, notice.title(), notice.text()
        )
        if not delivered:
            raise DeliveryFailed("Apprise could not deliver (see the server log)")

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
