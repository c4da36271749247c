"""Where Ollama lives on macOS: the Ollama.app bundle, its CLI link and its launch agent."""

from __future__ import annotations

import posixpath

from agent.detect.views import HostView, Installation

LAUNCH_AGENT = "com.ollama.ollama"
APP = "/Applications/Ollama.app"
APP_BINARY = f"{APP}/Contents/Resources/ollama"
BINARIES = (APP_BINARY, "/usr/local/bin/ollama", "/opt/homebrew/bin/ollama")


def find_installation(view: HostView) -> Installation:
    # The menu-bar app is "Ollama"; the server it starts is "ollama".
    processes = view.processes.find({"ollama"})
    server = next((p for p in processes if p.name == "ollama"), None)
    process = server or (processes[0] if processes else None)
    service = view.services.query(LAUNCH_AGENT)
    if service is not None and service.state == "not-found":
        service = None
    searched = (*BINARIES, posixpath.join(view.home, "Applications", "Ollama.app"))
    binary = process.exe if process and process.exe else None
    binary = binary or next((path for path in BINARIES if view.fs.exists(path)), None)
    if binary is None and view.fs.exists(searched[-1]):
        binary = posixpath.join(searched[-1], "Contents", "Resources", "ollama")
    models = view.env.get("OLLAMA_MODELS") or posixpath.join(view.home, ".ollama", "models")
    return Installation(
        system="Darwin",
        binary=binary,
        process=process,
        service=service,
        models_dir=models if view.env.get("OLLAMA_MODELS") or view.fs.exists(models) else None,
        searched=searched,
    )
