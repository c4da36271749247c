"""Where Ollama lives on Linux: the install script's systemd unit and /usr/local/bin binary."""

from __future__ import annotations

import posixpath

from agent.detect.views import HostView, Installation

SERVICE = "ollama.service"
BINARY_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")
# The install script runs the service as the `ollama` user, whose home is /usr/share/ollama.
SERVICE_MODELS_DIR = "/usr/share/ollama/.ollama/models"


def find_installation(view: HostView) -> Installation:
    processes = view.processes.find({"ollama"})
    process = processes[0] if processes else None
    service = view.services.query(SERVICE)
    if service is not None and service.state == "not-found":
        service = None
    searched = _binary_candidates(view)
    binary = process.exe if process and process.exe else None
    binary = binary or next((path for path in searched if view.fs.exists(path)), None)
    return Installation(
        system="Linux",
        binary=binary,
        process=process,
        service=service,
        models_dir=_models_dir(view),
        searched=searched,
    )


def _binary_candidates(view: HostView) -> tuple[str, ...]:
    dirs = list(BINARY_DIRS)
    dirs += [d for d in view.env.get("PATH", "").split(":") if d and d not in dirs]
    return tuple(posixpath.join(d, "ollama") for d in dirs)


def _models_dir(view: HostView) -> str | None:
    configured = view.env.get("OLLAMA_MODELS")
    if configured:
        return configured
    candidates = (SERVICE_MODELS_DIR, posixpath.join(view.home, ".ollama", "models"))
    return next((path for path in candidates if view.fs.exists(path)), None)
