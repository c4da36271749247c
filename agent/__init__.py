"""The OBT agent: finds the local Ollama, watches it and reports to the OBT server."""

from importlib.metadata import PackageNotFoundError, version


def agent_version() -> str:
    """The installed distribution's version; the agent ships inside the `obt` distribution."""
    try:
        return version("obt")
    except PackageNotFoundError:
        return "0.0.0"
