"""The real adapters behind HostView: os.path, psutil, systemctl and launchctl."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

import psutil

from agent.detect.views import HostView, ProcessInfo, ServiceInfo, ServiceView

_QUERY_TIMEOUT_S = 3.0


class RealFileSystem:
    def exists(self, path: str) -> bool:
        return os.path.exists(path)


class PsutilProcesses:
    def find(self, names: Collection[str]) -> list[ProcessInfo]:
        wanted = {name.lower() for name in names}
        found = []
        for proc in psutil.process_iter(["pid", "name", "exe"]):
            name = proc.info.get("name") or ""
            if name.lower() in wanted:
                found.append(ProcessInfo(pid=proc.info["pid"], name=name, exe=proc.info.get("exe")))
        return found


class SystemdServices:
    def query(self, name: str) -> ServiceInfo | None:
        systemctl = shutil.which("systemctl")
        if systemctl is None:
            return None
        out = _run([systemctl, "show", name, "--property=LoadState,ActiveState"])
        if out is None:
            return None
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        if props.get("LoadState") == "not-found":
            return ServiceInfo("systemd", name, "not-found")
        return ServiceInfo("systemd", name, props.get("ActiveState", "unknown"))


class LaunchdServices:
    def query(self, name: str) -> ServiceInfo | None:
        launchctl = shutil.which("launchctl")
        if launchctl is None:
            return None
        out = _run([launchctl, "list", name])
        if out is None:
            return ServiceInfo("launchd", name, "not-found")
        return ServiceInfo("launchd", name, "running" if '"PID" =' in out else "loaded")


class NoServices:
    """Windows: Ollama installs no service, so there is nothing to ask."""

    def query(self, name: str) -> ServiceInfo | None:
        return None


def current_system() -> str:
    if sys.platform == "win32":
        return "Windows"
    return "Darwin" if sys.platform == "darwin" else "Linux"


def this_host() -> tuple[str, HostView]:
    system = current_system()
    services: ServiceView = NoServices()
    if system == "Linux":
        services = SystemdServices()
    elif system == "Darwin":
        services = LaunchdServices()
    view = HostView(
        fs=RealFileSystem(),
        processes=PsutilProcesses(),
        services=services,
        env=dict(os.environ),
        home=str(Path.home()),
    )
    return system, view


def _run(argv: list[str]) -> str | None:
    """stdout of a successful command, None if it failed or hung."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv from shutil.which, no shell
            argv, capture_output=True, text=True, timeout=_QUERY_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
