"""One-line, human-readable summaries of events for timelines."""

from __future__ import annotations

from obt.domain.events import (
    ChannelClosed,
    ChannelOpened,
    ClientDecommissioned,
    ClientDeregistered,
    ClientRecovered,
    ClientRegistered,
    ClientReregistered,
    ClientSecretRevoked,
    ClientTimedOut,
    Event,
    ModelAdded,
    ModelChanged,
    ModelLoaded,
    ModelRemoved,
    ModelUnloaded,
    OllamaBecameAvailable,
    OllamaBecameUnavailable,
    ServerStarted,
    ServerStopped,
)


def human_bytes(size: int | None) -> str:
    if not size:
        return "0 B"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def short_digest(digest: str | None) -> str:
    if not digest:
        return "?"
    return digest.removeprefix("sha256:")[:12]


CHANNEL_ENDS = {
    "clean": "closed by the agent",
    "error": "connection lost",
    "replaced": "replaced by a newer channel",
    "server_stopping": "server stopping",
    "idle": "idle past the timeout",
}


def summarize(event: Event) -> str | None:
    match event:
        case ClientRegistered():
            ollama = event.ollama.get("version") or "not found"
            return f"Registered {event.hostname} (agent {event.agent_version}, Ollama {ollama})"
        case ClientReregistered():
            why = "new secret issued" if event.secret_sha256 else "agent restarted"
            return f"Re-registered {event.hostname} ({why})"
        case OllamaBecameUnavailable():
            return f"Ollama became unavailable: {event.error or 'no reason given'}"
        case OllamaBecameAvailable():
            return f"Ollama is available again (version {event.version or 'unknown'})"
        case ModelAdded():
            quant = f", {event.quantization}" if event.quantization else ""
            return f"Model {event.name} added ({human_bytes(event.size)}{quant})"
        case ModelChanged():
            return (
                f"Model {event.name} changed: {short_digest(event.previous_digest)} -> "
                f"{short_digest(event.digest)} ({human_bytes(event.size)})"
            )
        case ModelRemoved():
            return f"Model {event.name} removed"
        case ModelLoaded():
            return f"Model {event.name} loaded ({human_bytes(event.size_vram)} in VRAM)"
        case ModelUnloaded():
            return f"Model {event.name} unloaded"
        case ClientTimedOut():
            return (
                f"No heartbeat for {event.timeout_s:.0f} s: offline since "
                f"{event.offline_since.strftime('%Y-%m-%d %H:%M:%S')} UTC"
            )
        case ClientRecovered():
            return "Heartbeats resumed: back from offline"
        case ClientDeregistered():
            return f"Agent stopped cleanly ({event.reason})"
        case ClientDecommissioned():
            return f"Decommissioned: {event.reason}"
        case ClientSecretRevoked():
            return f"Client secret revoked: {event.reason}"
        case ChannelOpened():
            return f"Channel opened from {event.remote or 'an unknown address'}"
        case ChannelClosed():
            return f"Channel closed: {CHANNEL_ENDS.get(event.reason, event.reason)}"
        case ServerStarted():
            extra = {
                "first": "first start",
                "clean": "after a clean stop",
                "store_outage": "after a store outage: the gap counts as unknown",
            }.get(event.previous_shutdown, "after an unclean stop: the gap counts as unknown")
            return f"OBT server {event.version} started ({extra})"
        case ServerStopped():
            return f"OBT server stopped ({event.reason})"
        case _:
            return None
