"""`obt-agent`: run the agent (default) or diagnose this machine with `doctor`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import random
import signal
import socket
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp

from agent.backoff import Backoff
from agent.channel import Channel, FrameHandler, channel_url
from agent.clock import Clock, SystemClock
from agent.detect import Detection, detect
from agent.detect.system import this_host
from agent.detect.views import HostView
from agent.doctor import examine, render
from agent.errors import AgentError, SettingsError
from agent.logs import configure_logging, get_logger, log_event
from agent.loop import AgentLoop, Identity
from agent.ollama import OllamaClient
from agent.operations import OperationRunner
from agent.server import ObtClient
from agent.settings import AgentSettings, load_settings, parse_labels
from agent.state import StateDir
from agent.transport import AgentTransport, ChannelOpener
from agent.version import agent_version

EXIT_OK, EXIT_PROBLEMS, EXIT_SETTINGS = 0, 1, 2
_EPILOG = """\
environment (also read from a .env file):
  OBT_SERVER_URL        OBT server address (default http://127.0.0.1:8881)
  OBT_ENROLLMENT_TOKEN  token for the first registration; only the environment takes it,
                        so it never shows in the process list
  OBT_CLIENT_ID         this machine's id (default: generated once, kept in the state dir)
  OBT_AGENT_STATE_DIR   where the client id and the issued secret are kept
  OBT_AGENT_LABELS      labels as k=v,k=v
  OLLAMA_HOST           where Ollama listens, by Ollama's own rules (default 127.0.0.1:11434)
  OBT_AGENT_TRANSPORT   auto (the WebSocket channel, HTTP when it fails; default) or http
  OBT_AGENT_READ_ONLY   true refuses every pull/delete the server sends (default false)
Command-line options win over the environment.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obt-agent",
        description="Watch the local Ollama and report it to an OBT server.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"obt-agent {agent_version()}")
    _add_common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="{run,doctor}")
    for name, text in (
        ("run", "register, send heartbeats and model reports until stopped (the default)"),
        ("doctor", "show what the agent finds here, with a fix per problem; exit 1 on problems"),
    ):
        sub = commands.add_parser(
            name,
            help=text,
            description=text,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(sub, suppress=True)
    return parser


def _add_common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # Subcommands repeat the options so they may follow the command; SUPPRESS keeps a
    # subcommand's unset option from overwriting the value given before it.
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--server-url",
        metavar="URL",
        default=default(None),
        help="OBT server address (OBT_SERVER_URL)",
    )
    parser.add_argument(
        "--client-id",
        metavar="ID",
        default=default(None),
        help="this machine's client id (OBT_CLIENT_ID)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        default=default(None),
        help="state directory (OBT_AGENT_STATE_DIR)",
    )
    parser.add_argument(
        "--label",
        metavar="K=V",
        action="append",
        default=default([]),
        help="add a label; repeatable; adds to OBT_AGENT_LABELS",
    )
    parser.add_argument(
        "--ollama-host",
        metavar="HOST",
        default=default(None),
        help="where Ollama listens (OLLAMA_HOST)",
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        type=Path,
        default=default(Path(".env")),
        help="dotenv file to read (default ./.env, when present)",
    )
    parser.add_argument(
        "--log-format",
        choices=("kv", "json"),
        default=default("kv"),
        help="log lines as key=value (default) or JSON, on stderr",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="log debug details, e.g. every heartbeat",
    )


def settings_from_args(args: argparse.Namespace) -> AgentSettings:
    settings = load_settings(
        env_file=args.env_file,
        server_url=args.server_url,
        client_id=args.client_id,
        state_dir=args.state_dir,
        ollama_host=args.ollama_host,
    )
    try:
        extra = parse_labels(",".join(args.label))
    except ValueError as exc:
        raise SettingsError("--label", str(exc), "write each label as --label key=value") from None
    return settings.model_copy(update={"labels": {**settings.labels, **extra}})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.log_format)
    try:
        settings = settings_from_args(args)
        if args.command == "doctor":
            return asyncio.run(doctor(settings))
        return asyncio.run(run(settings))
    except SettingsError as exc:
        print(f"obt-agent: invalid setting {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    except AgentError as exc:
        print(f"obt-agent: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS


async def doctor(settings: AgentSettings, host: tuple[str, HostView] | None = None) -> int:
    system, view = host or this_host()
    async with aiohttp.ClientSession() as session:
        ollama = OllamaClient(settings.ollama.base_url, session)
        detection = await detect(settings.ollama, ollama, system, view)
        server = ObtClient(settings.server_url, session)
        state = StateDir(settings.resolved_state_dir())
        findings = await examine(settings, detection, ollama, server, state)
    print(render(findings))
    return EXIT_OK if all(f.ok for f in findings) else EXIT_PROBLEMS


async def run(
    settings: AgentSettings,
    stop: asyncio.Event | None = None,
    host: tuple[str, HostView] | None = None,
    clock: Clock | None = None,
    ollama_timeout_s: float = 5.0,
) -> int:
    """Run until SIGTERM/SIGINT (or `stop`), deregister, return the exit code."""
    log = get_logger("cli")
    stop = stop or asyncio.Event()
    state = StateDir(settings.resolved_state_dir())
    state.ensure()
    client_id = settings.client_id or state.client_id()
    if not settings.enrollment_token and not state.load_credentials(client_id, settings.server_url):
        raise SettingsError(
            "OBT_ENROLLMENT_TOKEN",
            f"not set, and no secret is saved in {state.path}",
            "set it to the enrollment token `obt serve` printed at its first start",
        )
    system, view = host or this_host()
    remove_handlers = _install_signal_handlers(stop)
    try:
        # One small pool for two hosts: the channel holds one connection, a pull another,
        # and heartbeats, model reports and Ollama's watchers use a few more at once.
        connector = aiohttp.TCPConnector(limit=8)
        async with aiohttp.ClientSession(connector=connector) as session:
            ollama = OllamaClient(settings.ollama.base_url, session, timeout_s=ollama_timeout_s)
            detection = await detect(settings.ollama, ollama, system, view)
            _log_detection(log, detection)
            clock = clock or SystemClock()
            rng = random.Random()
            transport = AgentTransport(
                ObtClient(settings.server_url, session),
                channel_opener(session, settings.server_url)
                if settings.transport == "auto"
                else None,
                clock,
                Backoff(rng),
            )
            loop = AgentLoop(
                identity=Identity(
                    client_id=client_id,
                    session_id=str(uuid.uuid4()),
                    hostname=socket.gethostname(),
                    platform={
                        "system": platform.system(),
                        "release": platform.release(),
                        "machine": platform.machine(),
                    },
                    agent_version=agent_version(),
                    labels=settings.labels,
                    server_url=settings.server_url,
                    ollama_base_url=settings.ollama.base_url,
                    ollama_installed=detection.installed,
                ),
                enrollment_token=settings.enrollment_token,
                ollama=ollama,
                server=transport,
                store=state,
                clock=clock,
                backoff=Backoff(rng),
            )
            operations = OperationRunner(
                ollama=ollama,
                send=transport.send_operation_frame,
                report_models=loop.report_models,
                read_only=settings.read_only,
            )
            transport.on_command = operations.handle
            log_event(
                log,
                logging.INFO,
                "agent_mode",
                transport=settings.transport,
                read_only=settings.read_only,
            )
            try:
                await loop.run(stop)
            finally:
                await operations.close()
                await transport.close()
    finally:
        remove_handlers()
    log_event(log, logging.INFO, "stopped")
    return EXIT_OK


def channel_opener(session: aiohttp.ClientSession, server_url: str) -> ChannelOpener:
    async def open_channel(
        client_id: str, secret: str, session_id: str, on_frame: FrameHandler
    ) -> Channel:
        url = channel_url(server_url, client_id)
        return await Channel.open(session, url, secret, session_id, on_frame)

    return open_channel


def _log_detection(log: logging.Logger, detection: Detection) -> None:
    found = detection.installation
    log_event(
        log,
        logging.INFO,
        "ollama_detected",
        base_url=detection.endpoint.base_url,
        reachable=detection.reachable,
        version=detection.version,
        binary=found.binary,
        service=f"{found.service.name}:{found.service.state}" if found.service else None,
        models_dir=found.models_dir,
        error=detection.error,
    )


def _install_signal_handlers(stop: asyncio.Event) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    if sys.platform == "win32":
        # No add_signal_handler on Windows: handlers run between bytecodes, so hop to the loop.
        # SIGBREAK is Ctrl+Break (and what a console close sends).
        def handle(signum: int, frame: object) -> None:
            loop.call_soon_threadsafe(stop.set)

        numbers = [signal.SIGINT, signal.SIGBREAK]
        previous = {n: signal.signal(n, handle) for n in numbers}

        def restore() -> None:
            for number, handler in previous.items():
                signal.signal(number, handler)

        return restore
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)

    def remove() -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(number)

    return remove
