"""The agent's version: that of the installed `obt` distribution, which ships the agent."""

from importlib.metadata import PackageNotFoundError, version


def agent_version() -> str:
    try:
        return version("obt")
    except PackageNotFoundError:
        return "0.0.0"
