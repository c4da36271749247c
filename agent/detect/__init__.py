"""Find Ollama: OLLAMA_HOST, a probe of `/` and `/api/version`, then the running process, the
service manager and the usual binary paths of the platform."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from agent.detect import linux, macos, windows
from agent.detect.views import HostView, Installation
from agent.errors import OllamaUnavailable
from agent.ollama import OllamaClient
from agent.ollama_host import OllamaEndpoint

_PLATFORMS = {
    "Linux": linux.find_installation,
    "Darwin": macos.find_installation,
    "Windows": windows.find_installation,
}
BANNER = "Ollama is running"


@dataclass(frozen=True)
class Detection:
    endpoint: OllamaEndpoint
    reachable: bool
    version: str | None
    error: str | None
    installation: Installation

    @property
    def installed(self) -> bool:
        found = self.installation
        return self.reachable or bool(found.binary or found.process or found.service)


def find_installation(system: str, view: HostView) -> Installation:
    finder = _PLATFORMS.get(system)
    if finder is None:
        return Installation(system=system)
    return finder(view)


async def probe(client: OllamaClient) -> tuple[bool, str | None, str | None]:
    """(reachable, version, error): `/` must say Ollama is running, then ask its version."""
    try:
        banner = await client.banner()
        if banner != BANNER:
            return False, None, f"{client.base_url}/ answered {banner[:60]!r}, not {BANNER!r}"
        return True, await client.version(), None
    except OllamaUnavailable as exc:
        return False, None, exc.reason


async def detect(
    endpoint: OllamaEndpoint, client: OllamaClient, system: str, view: HostView
) -> Detection:
    reachable, version, error = await probe(client)
    # psutil and systemctl block; keep the event loop free while they run.
    installation = await asyncio.to_thread(find_installation, system, view)
    return Detection(endpoint, reachable, version, error, installation)
