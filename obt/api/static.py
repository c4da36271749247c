"""Serves the built dashboard: its files, and index.html for every other non-API path."""

from __future__ import annotations

import gzip
import mimetypes
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from obt.api.errors import error_response

NOT_BUILT = """<!doctype html><html class="dark"><head><meta charset="utf-8">
<title>OBT</title></head>
<body style="font-family:sans-serif;background:#111827;color:#e5e7eb;padding:2rem">
<h1>OBT server is running</h1><p>The dashboard has not been built. Run <code>make setup</code>
(or <code>pnpm --dir frontend build</code>) and reload. The API is at
<a style="color:#93c5fd" href="/docs">/docs</a>.</p></body></html>"""

DASHBOARD_ROUTE = "dashboard"
IMMUTABLE = "public, max-age=31536000, immutable"
# What gzip shrinks; images and fonts are compressed already.
COMPRESSIBLE = (".js", ".mjs", ".css", ".json", ".svg", ".html", ".txt", ".map", ".webmanifest")
API_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json", "/metrics")


def default_dashboard_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "static"


class CompressedAssets:
    """Hashed build assets never change, so each is gzipped once, not on every first visit."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int], bytes]] = {}

    def get(self, path: Path) -> bytes | None:
        if path.suffix not in COMPRESSIBLE:
            return None
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        held = self._cache.get(path)
        if held is None or held[0] != stamp:
            held = (stamp, gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))
            self._cache[path] = held
        return held[1]


def accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "")


def mount_dashboard(app: FastAPI, directory: Path) -> None:
    root = directory.resolve()
    compressed = CompressedAssets()

    @app.get("/{path:path}", include_in_schema=False, name=DASHBOARD_ROUTE)
    async def dashboard(path: str, request: Request) -> Response:
        if request.url.path.startswith(API_PREFIXES) or request.url.path == "/api":
            return error_response(404, "not_found", f"no endpoint {request.url.path}")
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT)
        candidate = (root / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(root):
            if "/_app/immutable/" in request.url.path:
                body = compressed.get(candidate) if accepts_gzip(request) else None
                if body is not None:
                    media_type = mimetypes.guess_type(candidate.name)[0] or "text/plain"
                    return Response(
                        body,
                        media_type=media_type,
                        headers={
                            "Cache-Control": IMMUTABLE,
                            "Content-Encoding": "gzip",
                            "Vary": "Accept-Encoding",
                        },
                    )
                return FileResponse(candidate, headers={"Cache-Control": IMMUTABLE})
            return FileResponse(candidate, headers={"Cache-Control": "no-cache"})
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
