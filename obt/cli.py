"""The `obt` command: serve, rebuild projections, export events, replay the log, compact it and
verify or restore its archive."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from obt import __version__, cli_archive
from obt.errors import OBTError, SettingsError
from obt.settings import Settings, load_settings

log = logging.getLogger("obt")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obt",
        description="OBT server: a live, auditable registry of the machines that run Ollama. "
        "Settings come from OBT_* environment variables and a .env file (see .env.example).",
    )
    parser.add_argument("--version", action="version", version=f"obt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server (API + dashboard + scheduler)")
    serve.add_argument("--host", help="listen address (OBT_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (OBT_PORT, default 8881)")
    serve.add_argument("--data-dir", help="SQLite file and generated tokens (OBT_DATA_DIR)")

    proj = sub.add_parser("projections", help="manage read models")
    proj_sub = proj.add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild = proj_sub.add_parser("rebuild", help="rebuild read models from position 0")
    rebuild.add_argument("name", nargs="?", help="one projection (default: all)")

    events = sub.add_parser("events", help="read the event log")
    events_sub = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = events_sub.add_parser("export", help="write the log as NDJSON to stdout or a file")
    export.add_argument("--output", "-o", help="file to write (default: stdout)")
    export.add_argument("--after", type=int, default=0, help="start after this position")
    export.add_argument("--stream", help="only this stream (client-<id> or system)")

    replay = sub.add_parser("replay", help="print the state as of a moment, replayed from the log")
    replay.add_argument("--at", required=True, help="ISO-8601 time, e.g. 2026-11-27T12:00:00Z")
    replay.add_argument("--client", help="one client id (default: the whole fleet)")

    compact = sub.add_parser(
        "compact", help="move heartbeats past OBT_HEARTBEAT_RETENTION into the archive"
    )
    compact.add_argument("--dry-run", action="store_true", help="count, change nothing")
    archive = sub.add_parser("archive", help="check or restore the archive of compacted events")
    archive_sub = archive.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = archive_sub.add_parser(
        "verify", help="recompute every hash; exit 1 naming each altered, missing or moved segment"
    )
    restore = archive_sub.add_parser(
        "restore", help="write the log with its archived events into a scratch SQLite store"
    )
    restore.add_argument("--to", required=True, help="an empty directory for the new store")
    restore.add_argument("--from", dest="since", help="ISO-8601: only events from this time")
    restore.add_argument("--until", help="ISO-8601: only events before this time")
    for p in (serve, rebuild, export, replay, compact, verify, restore):
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"obt: {exc}", file=sys.stderr)
        return 2
    level = "DEBUG" if args.verbose else settings.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # One line per scheduler tick is noise; its failures are logged by OBT itself.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            return serve(settings)
        runners: dict[str, Callable[[], Coroutine[Any, Any, int]]] = {
            "projections": lambda: _rebuild(settings, args.name),
            "events": lambda: _export(settings, args.output, args.after, args.stream),
            "replay": lambda: _replay(settings, args.at, args.client),
            "compact": lambda: cli_archive.compact(settings, dry_run=args.dry_run),
            "archive": lambda: _archive(settings, args),
        }
        return asyncio.run(runners[args.command]())
    except OBTError as exc:
        print(f"obt: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def serve(settings: Settings) -> int:
    import uvicorn

    from obt.api.app import create_app
    from obt.api.http_protocol import BoundedHttpToolsProtocol
    from obt.api.ws_protocol import ChannelWebSocketProtocol

    app = create_app(settings)
    print(f"OBT dashboard: http://{settings.host}:{settings.port}/  (API docs at /docs)")
    token_file = settings.enrollment_token_path.resolve()
    if settings.enrollment_token:
        print("Enrollment token: from OBT_ENROLLMENT_TOKEN")
    else:
        print(f"Enrollment token: {token_file} (created on first start)")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level.lower() == "debug",
        proxy_headers=False,
        http=BoundedHttpToolsProtocol,
        # The agent channel: no compression (small JSON frames, and zlib state per
        # connection), frames up to the body limit, pings to find dead peers.
        ws=ChannelWebSocketProtocol,
        ws_per_message_deflate=False,
        ws_max_size=settings.max_body_bytes,
        ws_ping_interval=settings.heartbeat_timeout_s,
        ws_ping_timeout=settings.heartbeat_timeout_s,
        timeout_graceful_shutdown=5,
    )
    return 0


async def _rebuild(settings: Settings, name: str | None) -> int:
    from obt.bootstrap import bootstrap, tune_gc

    obt = await bootstrap(settings)
    try:
        await obt.runner.start()
        tune_gc()
        names = [name] if name else None
        started = datetime.now(UTC)
        try:
            count = await obt.runner.rebuild(names)
        except KeyError as exc:
            print(f"obt: {exc.args[0]}", file=sys.stderr)
            return 2
        seconds = (datetime.now(UTC) - started).total_seconds()
        print(f"rebuilt {name or 'all projections'} from {count} events in {seconds:.1f} s")
        return 0
    finally:
        await obt.store.close()


async def _export(settings: Settings, output: str | None, after: int, stream: str | None) -> int:
    from obt.api.audit import ndjson
    from obt.bootstrap import bootstrap

    obt = await bootstrap(settings)
    try:
        head = await obt.store.head()
        # A one-shot command: blocking file writes hold up nothing else on this loop.
        out = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115, ASYNC230
        try:
            async for chunk in ndjson(obt.store, after=after, until=head, stream=stream):
                out.write(chunk)
        finally:
            if output:
                out.close()
        return 0
    finally:
        await obt.store.close()


async def _archive(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "verify":
        return await cli_archive.verify(settings)
    since, until = _moment(args.since, "--from"), _moment(args.until, "--until")
    if since is False or until is False:
        return 2
    return await cli_archive.restore(settings, Path(args.to), since or None, until or None)


def _moment(text: str | None, flag: str) -> datetime | Literal[False] | None:
    """The ISO-8601 time of a flag (UTC when no zone is given); False after printing why not."""
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        print(f"obt: {flag} {text!r} is not an ISO-8601 time", file=sys.stderr)
        return False
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def _replay(settings: Settings, at_text: str, client: str | None) -> int:
    from obt.bootstrap import bootstrap
    from obt.projections.replay import client_state, fleet_state

    try:
        at = datetime.fromisoformat(at_text.replace("Z", "+00:00"))
    except ValueError:
        print(f"obt: --at {at_text!r} is not an ISO-8601 time", file=sys.stderr)
        return 2
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    obt = await bootstrap(settings)
    try:
        body: dict[str, Any]
        if client:
            position, doc = await client_state(obt.store, client, at)
            body = {"at": at, "position": position, "client": doc}
        else:
            position, docs = await fleet_state(obt.store, at)
            body = {"at": at, "position": position, "clients": docs}
        sys.stdout.buffer.write(orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    finally:
        await obt.store.close()


if __name__ == "__main__":
    sys.exit(main())
