"""Where Ollama lives on Windows: a per-user install and a tray app started from Startup.

Ollama registers no Windows service; "ollama app.exe" in the Startup folder starts at logon
and launches `ollama.exe serve`.
"""

from __future__ import annotations

import ntpath

from agent.detect.views import HostView, Installation, ServiceInfo

SERVER_EXE = "ollama.exe"
TRAY_EXE = "ollama app.exe"


def find_installation(view: HostView) -> Installation:
    processes = view.processes.find({SERVER_EXE, TRAY_EXE})
    server = next((p for p in processes if p.name.lower() == SERVER_EXE), None)
    process = server or (processes[0] if processes else None)
    local = view.env.get("LOCALAPPDATA") or ntpath.join(view.home, "AppData", "Local")
    searched = (ntpath.join(local, "Programs", "Ollama", SERVER_EXE),)
    binary = server.exe if server and server.exe else None
    binary = binary or next((path for path in searched if view.fs.exists(path)), None)
    return Installation(
        system="Windows",
        binary=binary,
        process=process,
        service=_startup_entry(
            view, tray_running=any(p.name.lower() == TRAY_EXE for p in processes)
        ),
        models_dir=_models_dir(view),
        searched=searched,
    )


def _startup_entry(view: HostView, tray_running: bool) -> ServiceInfo | None:
    roaming = view.env.get("APPDATA") or ntpath.join(view.home, "AppData", "Roaming")
    link = ntpath.join(
        roaming, "Microsoft", "Windows", "Start Menu", "Programs", "Startup", "Ollama.lnk"
    )
    if not view.fs.exists(link):
        return None
    return ServiceInfo("startup-folder", link, "running" if tray_running else "enabled")


def _models_dir(view: HostView) -> str | None:
    configured = view.env.get("OLLAMA_MODELS")
    if configured:
        return configured
    profile = view.env.get("USERPROFILE") or view.home
    models = ntpath.join(profile, ".ollama", "models")
    return models if view.fs.exists(models) else None
