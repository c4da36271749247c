"""Serves the built dashboard: its files, and index.html for every other non-API path."""

from __future__ import annotations

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
API_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json", "/metrics")


def default_dashboard_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "static"


def mount_dashboard(app: FastAPI, directory: Path) -> None:
    root = directory.resolve()

    @app.get("/{path:path}", include_in_schema=False, name=DASHBOARD_ROUTE)
    async def dashboard(path: str, request: Request) -> Response:
        if request.url.path.startswith(API_PREFIXES) or request.url.path == "/api":
            return error_response(404, "not_found", f"no endpoint {request.url.path}")
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT)
        candidate = (root / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(root):
            immutable = "/_app/immutable/" in request.url.path
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return FileResponse(candidate, headers={"Cache-Control": cache})
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
