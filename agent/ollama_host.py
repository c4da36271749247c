"""OLLAMA_HOST parsed the way Ollama itself parses it, turned into a URL the agent can reach."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from agent.errors import SettingsError

DEFAULT_PORT = 11434
_FIX = "use host[:port] or http(s)://host[:port], e.g. 127.0.0.1:11434"
# A server listening on every interface is reached through loopback, as Ollama's own CLI does.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True)
class OllamaEndpoint:
    raw: str
    scheme: str
    host: str
    port: int
    path: str

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = f"/{self.path}" if self.path else ""
        return f"{self.scheme}://{host}:{self.port}{path}"


def parse_ollama_host(value: str | None) -> OllamaEndpoint:
    """Follow Ollama's envconfig rules; unlike Ollama, refuse a bad port instead of guessing."""
    raw = (value or "").strip()
    scheme, sep, hostport = raw.partition("://")
    default_port = DEFAULT_PORT
    if not sep:
        scheme, hostport = "http", raw
    elif scheme == "http":
        default_port = 80
    elif scheme == "https":
        default_port = 443
    else:
        raise SettingsError("OLLAMA_HOST", f"unsupported scheme {scheme!r} in {raw!r}", _FIX)
    hostport, _, path = hostport.partition("/")
    host, port_text = _split_host_port(hostport)
    port = default_port
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            raise SettingsError("OLLAMA_HOST", f"invalid port {port_text!r} in {raw!r}", _FIX)
        port = int(port_text)
    if not _is_valid_host(host):
        raise SettingsError("OLLAMA_HOST", f"invalid host {host!r} in {raw!r}", _FIX)
    host = _WILDCARDS.get(host, host)
    return OllamaEndpoint(raw=raw, scheme=scheme, host=host, port=port, path=path.strip("/"))


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SettingsError("OLLAMA_HOST", f"unclosed '[' in {hostport!r}", _FIX)
        rest = hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SettingsError("OLLAMA_HOST", f"unexpected {rest!r} after ']'", _FIX)
        return hostport[1:end], rest[1:] if rest else None
    if hostport.count(":") > 1:
        return hostport, None  # a bare IPv6 address carries no port
    host, sep, port = hostport.partition(":")
    return host, port if sep else None


def _is_valid_host(host: str) -> bool:
    if host in _WILDCARDS:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        return all(label and len(label) <= 63 for label in labels) and all(
            ch.isalnum() or ch in "-_" for ch in host.replace(".", "")
        )
    return True
