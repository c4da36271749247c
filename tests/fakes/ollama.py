"""A fake Ollama that speaks the documented HTTP API, with switchable failure modes.

In-process: `async with FakeOllama() as fake: fake.base_url ...`.
Standalone (for browser end-to-end tests driving it from another process):
`python -m tests.fakes.ollama --port 11434`, controlled through `/_fake/...`:

    GET    /_fake/state                   models, loaded models and the mode
    POST   /_fake/models   {name, ...}    add (or replace) an installed model
    DELETE /_fake/models/{name}           remove an installed model (and unload it)
    POST   /_fake/load     {name, size_vram?}  load an installed model
    POST   /_fake/unload   {name}         unload a model
    POST   /_fake/mode     {mode}         ok | down | error | slow | garbage | no_size_vram
                                          | missing_fields
    POST   /_fake/reset                   back to the seeded models and mode ok
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

VERSION = "0.9.6"
MODES = ("ok", "down", "error", "slow", "garbage", "no_size_vram", "missing_fields")


@dataclass
class Model:
    name: str
    size: int = 4_661_224_676
    family: str = "llama"
    parameter_size: str = "8.0B"
    quantization_level: str = "Q4_K_M"
    digest: str = ""
    modified_at: str = "2026-11-01T10:00:00.000000+00:00"

    def __post_init__(self) -> None:
        if not self.digest:
            self.digest = hashlib.sha256(self.name.encode()).hexdigest()

    @property
    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }

    def tag(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.name,
            "modified_at": self.modified_at,
            "size": self.size,
            "digest": self.digest,
            "details": self.details,
        }


@dataclass
class Loaded:
    size_vram: int
    expires_at: datetime
    context_length: int = 4096


def seed_models() -> list[Model]:
    return [
        Model("llama3.2:3b", size=2_019_393_189, parameter_size="3.2B"),
        Model("qwen2.5:7b", size=4_683_087_332, family="qwen2", parameter_size="7.6B"),
    ]


@dataclass
class FakeOllama:
    """The state lives here; `app()` serves it. Tests change it directly or over /_fake."""

    models: dict[str, Model] = field(default_factory=dict)
    loaded: dict[str, Loaded] = field(default_factory=dict)
    mode: str = "ok"
    requests: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""

    def add(self, model: Model) -> None:
        self.models[model.name] = model

    def remove(self, name: str) -> None:
        self.models.pop(name, None)
        self.loaded.pop(name, None)

    def load(self, name: str, size_vram: int | None = None, keep_alive_s: int = 300) -> None:
        model = self.models[name]
        vram = model.size if size_vram is None else size_vram
        expires = datetime.now(UTC) + timedelta(seconds=keep_alive_s)
        self.loaded[name] = Loaded(size_vram=vram, expires_at=expires)

    def unload(self, name: str) -> None:
        self.loaded.pop(name, None)

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        self.mode = mode
        # Hung "slow" requests are released on every mode change, so nothing waits forever.
        self._release.set()
        self._release = asyncio.Event()

    def reset(self) -> None:
        self.models = {m.name: m for m in seed_models()}
        self.loaded = {}
        self.set_mode("ok")

    def state(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "models": [m.tag() for m in self.models.values()],
            "loaded": self._ps_items(),
        }

    def _ps_items(self) -> list[dict[str, Any]]:
        items = []
        for name, loaded in self.loaded.items():
            model = self.models[name]
            item: dict[str, Any] = {
                "name": name,
                "model": name,
                "size": model.size,
                "size_vram": loaded.size_vram,
                "digest": model.digest,
                "details": model.details,
                "expires_at": loaded.expires_at.isoformat(),
                "context_length": loaded.context_length,
            }
            if self.mode == "no_size_vram":
                del item["size_vram"]
            items.append(item)
        return items

    # -- Ollama's API ---------------------------------------------------------------------

    @web.middleware
    async def _failures(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_fake"):
            return await handler(request)
        self.requests.append(f"{request.method} {request.path}")
        if self.mode == "down":
            # Drop the connection without an answer, as a crashed server would.
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPServiceUnavailable
        if self.mode == "error":
            return web.json_response({"error": "llama runner process has terminated"}, status=500)
        if self.mode == "slow":
            await self._release.wait()
        if self.mode == "garbage" and request.path != "/":
            return web.Response(text='{"models": [ {"name": ', content_type="application/json")
        return await handler(request)

    async def _root(self, _: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, _: web.Request) -> web.Response:
        return web.json_response({"version": VERSION})

    async def _tags(self, _: web.Request) -> web.Response:
        items = [m.tag() for m in self.models.values()]
        if self.mode == "missing_fields":
            for item in items:
                item.pop("digest")
        return web.json_response({"models": items})

    async def _ps(self, _: web.Request) -> web.Response:
        return web.json_response({"models": self._ps_items()})

    async def _show(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        name = body.get("model") or body.get("name") if isinstance(body, dict) else None
        if not name:
            return web.json_response({"error": "model is required"}, status=400)
        model = self.models.get(name)
        if model is None:
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        return web.json_response(
            {
                "modelfile": f"FROM {name}\n",
                "parameters": "stop <|eot_id|>",
                "template": "{{ .Prompt }}",
                "details": model.details,
                "model_info": {"general.architecture": model.family},
                "capabilities": ["completion"],
                "modified_at": model.modified_at,
            }
        )

    # -- control API --------------------------------------------------------------------

    async def _control_state(self, _: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _control_add(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        try:
            self.add(Model(**body))
        except TypeError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(self.state())

    async def _control_remove(self, request: web.Request) -> web.Response:
        self.remove(request.match_info["name"])
        return web.json_response(self.state())

    async def _control_load(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if body.get("name") not in self.models:
            raise web.HTTPNotFound(text=f"no installed model {body.get('name')!r}")
        self.load(str(body["name"]), body.get("size_vram"), int(body.get("keep_alive_s", 300)))
        return web.json_response(self.state())

    async def _control_unload(self, request: web.Request) -> web.Response:
        self.unload(str((await _json_object(request)).get("name")))
        return web.json_response(self.state())

    async def _control_mode(self, request: web.Request) -> web.Response:
        try:
            self.set_mode(str((await _json_object(request)).get("mode")))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(self.state())

    async def _control_reset(self, _: web.Request) -> web.Response:
        self.reset()
        return web.json_response(self.state())

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._failures])
        app.router.add_get("/", self._root)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/ps", self._ps)
        app.router.add_post("/api/show", self._show)
        app.router.add_get("/_fake/state", self._control_state)
        app.router.add_post("/_fake/models", self._control_add)
        app.router.add_delete("/_fake/models/{name:.+}", self._control_remove)
        app.router.add_post("/_fake/load", self._control_load)
        app.router.add_post("/_fake/unload", self._control_unload)
        app.router.add_post("/_fake/mode", self._control_mode)
        app.router.add_post("/_fake/reset", self._control_reset)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOllama:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a fake Ollama for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--empty", action="store_true", help="start with no models installed")
    args = parser.parse_args(argv)
    fake = FakeOllama()
    if not args.empty:
        fake.models = {m.name: m for m in seed_models()}
    web.run_app(fake.app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
