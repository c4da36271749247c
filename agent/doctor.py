"""`obt-agent doctor`: what the agent finds on this machine, with a verdict and a fix per problem.

Read-only: it creates no client id, saves no secret and records nothing on the server.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.channel import Channel, channel_url
from agent.detect import Detection
from agent.errors import AuthRejected, ChannelRefused, ClientUnknown, ServerError, StateError
from agent.ollama import OllamaClient
from agent.server import ObtClient
from agent.settings import AgentSettings
from agent.state import StateDir

_START_OLLAMA = {
    "Linux": "start it with `sudo systemctl start ollama` (or `ollama serve`)",
    "Darwin": "open the Ollama app (or run `ollama serve`)",
    "Windows": "start Ollama from the Start menu (or run `ollama serve`)",
}


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    summary: str
    fix: str | None = None


async def examine(
    settings: AgentSettings,
    detection: Detection,
    ollama: OllamaClient,
    server: ObtClient,
    state: StateDir,
) -> list[Finding]:
    found = detection.installation
    start = _START_OLLAMA.get(found.system, "start Ollama")
    findings = [
        Finding("OLLAMA_HOST", True, f"{settings.ollama_host or '(unset)'} -> {ollama.base_url}"),
    ]
    if detection.reachable:
        findings.append(Finding("ollama", True, f"running, version {detection.version}"))
    else:
        findings.append(
            Finding(
                "ollama",
                False,
                f"not reachable at {ollama.base_url}: {detection.error}",
                f"{start}, or set OLLAMA_HOST to the address it listens on",
            )
        )
    if found.binary:
        process = f" (running as pid {found.process.pid})" if found.process else ""
        findings.append(Finding("binary", True, f"{found.binary}{process}"))
    else:
        findings.append(
            Finding(
                "binary",
                detection.reachable,  # a remote or containerised Ollama has no local binary
                "not found in " + ", ".join(found.searched[:4] or ("the usual places",)),
                None if detection.reachable else "install Ollama on this machine",
            )
        )
    service = found.service
    findings.append(
        Finding(
            "service",
            True,
            f"{service.manager} {service.name}: {service.state}" if service else "none found",
        )
    )
    findings.append(Finding("models dir", True, found.models_dir or "not found"))
    if detection.reachable:
        snapshot = await ollama.snapshot()
        if snapshot.reachable:
            loaded = ", ".join(f"{m.name} ({m.size_vram} B VRAM)" for m in snapshot.loaded)
            findings.append(Finding("models", True, f"{len(snapshot.installed)} installed"))
            findings.append(Finding("loaded", True, loaded or "none"))
        else:
            findings.append(Finding("models", False, str(snapshot.error), "check Ollama's own log"))
    findings += await _server_findings(settings, server, state)
    findings.append(_mode_finding(settings))
    return findings


def _mode_finding(settings: AgentSettings) -> Finding:
    if settings.read_only:
        return Finding(
            "mode", True, "read-only: pull and delete commands are refused (OBT_AGENT_READ_ONLY)"
        )
    return Finding(
        "mode", True, "pull and delete commands accepted (OBT_AGENT_READ_ONLY=true refuses them)"
    )


async def _transport_finding(
    settings: AgentSettings, server: ObtClient, client_id: str | None, secret: str
) -> Finding:
    """Which way the agent will talk to the server, and why; HTTP works either way."""
    if settings.transport == "http":
        return Finding("transport", True, "HTTP (OBT_AGENT_TRANSPORT=http: the channel is off)")
    url = channel_url(settings.server_url, client_id or "")
    try:
        await Channel.probe(server.session, url, secret)
    except ChannelRefused as exc:
        why = exc.reason
        if exc.status in (400, 404, 405, 426, 501):
            why += " (a proxy that does not pass WebSockets, or a server without the channel)"
        return Finding(
            "transport",
            True,
            f"HTTP, because {why}; the agent tries the channel again every minute or so",
        )
    return Finding("transport", True, f"channel ({url}): the WebSocket upgrade was accepted")


async def _server_findings(
    settings: AgentSettings, server: ObtClient, state: StateDir
) -> list[Finding]:
    try:
        client_id = settings.client_id or state.stored_client_id()
    except StateError as exc:
        return [Finding("state dir", False, str(exc), "fix the permissions of OBT_AGENT_STATE_DIR")]
    findings = [
        Finding("state dir", True, f"{state.path} (client id {client_id or 'not yet generated'})")
    ]
    try:
        health = await server.health()
    except ServerError as exc:
        fix = "check OBT_SERVER_URL (or --server-url) and that `obt serve` runs there"
        return [*findings, Finding("server", False, f"{server.base_url}: {exc}", fix)]
    findings.append(Finding("server", True, f"{server.base_url}: {health.get('status', 'up')}"))
    saved = state.load_credentials(client_id, settings.server_url) if client_id else None
    try:
        if saved is not None:
            findings.append(await _check_secret(server, client_id, saved.client_secret))
            findings.append(
                await _transport_finding(settings, server, client_id, saved.client_secret)
            )
        elif settings.enrollment_token:
            found = await server.identify(settings.enrollment_token)
            if found is None:
                path = "/api/v1/agents/register"
                status = await server.check_credential(path, settings.enrollment_token)
                findings.append(Finding("auth", True, "enrollment token " + _verdict(status)))
            elif found.get("kind") == "enrollment_token":
                findings.append(Finding("auth", True, "enrollment token accepted"))
            else:
                findings.append(
                    Finding(
                        "auth",
                        False,
                        "OBT_ENROLLMENT_TOKEN holds a client secret, not the enrollment token",
                        "copy the enrollment token from the OBT server (data/enrollment-token)",
                    )
                )
        if saved is None and not settings.enrollment_token:
            findings.append(
                Finding(
                    "auth",
                    False,
                    "no saved secret and no enrollment token",
                    "set OBT_ENROLLMENT_TOKEN to the token `obt serve` printed",
                )
            )
        if saved is None:
            findings.append(
                Finding(
                    "transport",
                    True,
                    "not checked before the first registration (the channel needs the client "
                    "secret); the agent tries the channel first, HTTP when it fails",
                )
            )
    except (AuthRejected, ClientUnknown) as exc:
        fix = (
            "set OBT_ENROLLMENT_TOKEN and restart the agent: it enrols again by itself"
            if saved is not None
            else "copy the enrollment token again from the OBT server"
        )
        findings.append(Finding("auth", False, f"refused: {exc}", fix))
    except ServerError as exc:
        findings.append(Finding("auth", False, f"could not check: {exc}", "run doctor again"))
    return findings


async def _check_secret(server: ObtClient, client_id: str | None, secret: str) -> Finding:
    found = await server.identify(secret)
    if found is None:
        path = f"/api/v1/agents/{client_id}/heartbeats"
        status = await server.check_credential(path, secret)
        return Finding("auth", True, "saved client secret " + _verdict(status))
    if found.get("kind") == "client_secret" and found.get("client_id") == client_id:
        return Finding("auth", True, f"saved client secret accepted for {client_id}")
    return Finding(
        "auth",
        False,
        f"the saved secret belongs to {found.get('client_id')!r}, not {client_id!r}",
        "delete the state dir's secret file; the agent enrols again with OBT_ENROLLMENT_TOKEN",
    )


def _verdict(status: int) -> str:
    # A server that validates the body before the credential answers 422 to any token, so
    # only a 401/403 is conclusive; say so rather than claim the credential works.
    if status < 400:
        return "accepted"
    return f"not refused (HTTP {status}; the server may check the body first: unconfirmed)"


def render(findings: list[Finding]) -> str:
    width = max(len(f.check) for f in findings)
    lines = []
    for finding in findings:
        mark = "ok " if finding.ok else "BAD"
        lines.append(f"[{mark}] {finding.check:<{width}}  {finding.summary}")
        if finding.fix:
            lines.append(f"      {'':<{width}}  fix: {finding.fix}")
    problems = [f for f in findings if not f.ok]
    if problems:
        lines.append(f"\nVerdict: {len(problems)} problem(s); fix the lines marked BAD.")
    else:
        lines.append("\nVerdict: all good; the agent can run.")
    return "\n".join(lines)
