"""The port through which server-side work talks to connected agents (fleet operations).

The agent channel (obt/api/channel_registry.py) implements it; code in obt/commands depends only
on this Protocol, so the dependency arrow keeps pointing inwards, and tests may pass a fake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

#: Called with (client_id, frame) for every `progress` or `result` frame an agent sends.
FrameHandler = Callable[[str, Mapping[str, Any]], Awaitable[None]]


class AgentLink(Protocol):
    def connected(self, client_id: str) -> bool:
        """Whether a channel to this agent is open on this server."""
        ...

    async def send(self, client_id: str, frame: Mapping[str, Any]) -> None:
        """Send one frame (`command`, `cancel`); raises AgentNotConnected or AgentBusy
        (obt.errors) instead of queueing without bound."""
        ...

    def subscribe(self, handler: FrameHandler) -> None:
        """Receive the agents' `progress` and `result` frames."""
        ...
