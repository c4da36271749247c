"""What detection may look at (files, processes, services), as Protocols with in-memory fakes.

Each platform's rules take a HostView, so Linux, macOS and Windows logic all run in unit
tests on any OS; agent.detect.system holds the adapters for the machine the agent runs on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    name: str
    exe: str | None = None


@dataclass(frozen=True)
class ServiceInfo:
    """manager: systemd | launchd | startup-folder; state: active, inactive, running, ..."""

    manager: str
    name: str
    state: str


@dataclass(frozen=True)
class Installation:
    system: str
    binary: str | None = None
    process: ProcessInfo | None = None
    service: ServiceInfo | None = None
    models_dir: str | None = None
    searched: tuple[str, ...] = ()


class FileSystemView(Protocol):
    def exists(self, path: str) -> bool: ...


class ProcessView(Protocol):
    def find(self, names: Collection[str]) -> list[ProcessInfo]:
        """Processes whose name is one of `names` (compared case-insensitively)."""
        ...


class ServiceView(Protocol):
    def query(self, name: str) -> ServiceInfo | None:
        """The service's state, or None when there is no such service manager here."""
        ...


@dataclass(frozen=True)
class HostView:
    fs: FileSystemView
    processes: ProcessView
    services: ServiceView
    env: Mapping[str, str]
    home: str


@dataclass
class FakeFileSystem:
    paths: set[str] = field(default_factory=set)

    def exists(self, path: str) -> bool:
        return path in self.paths


@dataclass
class FakeProcesses:
    running: list[ProcessInfo] = field(default_factory=list)

    def find(self, names: Collection[str]) -> list[ProcessInfo]:
        wanted = {name.lower() for name in names}
        return [p for p in self.running if p.name.lower() in wanted]


@dataclass
class FakeServices:
    services: dict[str, ServiceInfo] = field(default_factory=dict)
    available: bool = True

    def query(self, name: str) -> ServiceInfo | None:
        if not self.available:
            return None
        return self.services.get(name)
