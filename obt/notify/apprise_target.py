"""Apprise: 100+ services by URL (ntfy://, slack://, discord://, mailto://, json://...).

Apprise's notify blocks (it uses requests), so it runs on a worker thread, never on the loop.
"""

from __future__ import annotations

import asyncio

from obt.notify import DeliveryFailed, Notice, Target


def _notify(url: str, title: str, body: str) -> bool:
    import apprise  # the server's dependency; imported when a notice goes out

    sender = apprise.Apprise()
    if not sender.add(url):
        raise DeliveryFailed("Apprise does not understand this URL")
    return bool(sender.notify(title=title, body=body))


class AppriseNotifier:
    async def send(self, target: Target, notice: Notice) -> None:
        delivered = await asyncio.to_thread(_notify, target.url, notice.title(), notice.text())
        if not delivered:
            raise DeliveryFailed("Apprise could not deliver (see the server log)")
