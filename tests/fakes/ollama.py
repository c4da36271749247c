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
    POST   /_fake/library  {name, size?}  make a model pullable (the registry's side)
    POST   /_fake/pull     {step_s?, steps?, hold?, fail?: {model: error}, cut?}
                                          how pulls go: the pace, held (no progress until
                                          released), an in-band error for a model, the next
                                          `cut` pulls cut off half-way

Model management follows Ollama's docs/api.md: `POST /api/pull` streams NDJSON ("pulling
manifest", "pulling <digest>" with total/completed per layer, "verifying sha256 digest",
"writing manifest", "removing any unused layers", "success"); failures come in-band as an
`{"error": ...}` line in the 200 stream (an unknown model fails at the manifest); a pull cut
off resumes where it stopped (the downloaded bytes of each blob are kept); `stream: false`
answers one object (a 500 with the error on failure). `DELETE /api/delete` answers 200, or 404
for a model that is not installed. Names without a tag mean `:latest`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from agent.model_names import is_valid_model_name

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


@dataclass
class LibraryModel:
    """A model the fake registry serves: its layers are (blob digest, size) pairs."""

    name: str
    size: int = 2_019_393_189
    family: str = "llama"
    parameter_size: str = "3.2B"

    @property
    def layers(self) -> list[tuple[str, int]]:
        def blob(part: str) -> str:
            return "sha256:" + hashlib.sha256(f"{self.name}/{part}".encode()).hexdigest()

        small = [("template", 1_429), ("license", 7_711), ("params", 96)]
        weights = self.size - sum(size for _, size in small)
        return [(blob("weights"), weights), *((blob(part), size) for part, size in small)]

    def installed(self) -> Model:
        return Model(
            self.name,
            size=self.size,
            family=self.family,
            parameter_size=self.parameter_size,
            modified_at=datetime.now(UTC).isoformat(),
        )


def seed_library() -> dict[str, LibraryModel]:
    models = [
        LibraryModel("llama3.2:1b", size=1_321_098_329, parameter_size="1.2B"),
        LibraryModel("llama3.2:3b"),
        LibraryModel("phi4:14b", size=9_053_116_391, family="phi3", parameter_size="14.7B"),
        LibraryModel("qwen2.5:7b", size=4_683_087_332, family="qwen2", parameter_size="7.6B"),
        LibraryModel("mistral:latest", size=4_113_301_824, parameter_size="7.2B"),
    ]
    return {m.name: m for m in models}


@dataclass
class PullPlan:
    """How pulls behave; tests change it directly or over /_fake/pull."""

    step_s: float = 0.01
    steps: int = 8  # progress lines per large layer
    hold: bool = False
    fail: dict[str, str] = field(default_factory=dict)
    cut: int = 0


def with_tag(name: str) -> str:
    return name if name.rfind(":") > name.rfind("/") else f"{name}:latest"


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
    library: dict[str, LibraryModel] = field(default_factory=seed_library)
    pull_plan: PullPlan = field(default_factory=PullPlan)
    downloaded: dict[str, int] = field(default_factory=dict)  # blob digest -> bytes kept
    pulls: list[str] = field(default_factory=list)
    pulls_aborted: int = 0  # pulls whose client went away before the end
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _pull_gate: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""

    def __post_init__(self) -> None:
        self.set_pull_plan(self.pull_plan)

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
        self.library = seed_library()
        self.downloaded = {}
        self.set_pull_plan(PullPlan())
        self.set_mode("ok")

    def set_pull_plan(self, plan: PullPlan) -> None:
        self.pull_plan = plan
        if plan.hold:
            self._pull_gate.clear()
        else:
            self._pull_gate.set()

    def state(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "models": [m.tag() for m in self.models.values()],
            "loaded": self._ps_items(),
            "pulls": self.pulls,
            "pulls_aborted": self.pulls_aborted,
            "downloaded": self.downloaded,
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

    async def _pull(self, request: web.Request) -> web.StreamResponse:
        name, refusal = await self._model_in(request)
        if refusal is not None:
            return refusal
        body = await request.json()
        self.pulls.append(name)
        if body.get("stream", True) is False:
            last: dict[str, Any] = {}
            async for line in self._pull_lines(name):
                last = line
            if "error" in last:
                return web.json_response({"error": last["error"]}, status=500)
            return web.json_response({"status": "success"})
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        try:
            async for line in self._pull_lines(name):
                if line.get("cut"):
                    # The connection drops mid-download, as a network cut would.
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                await response.write(json.dumps(line).encode() + b"\n")
        except (asyncio.CancelledError, ConnectionError):
            self.pulls_aborted += 1  # the client went away (Ollama stops the download)
            raise
        await response.write_eof()
        return response

    async def _pull_lines(self, name: str) -> AsyncIterator[dict[str, Any]]:
        plan = self.pull_plan
        yield {"status": "pulling manifest"}
        entry = self.library.get(name)
        if entry is None:
            yield {"error": "pull model manifest: file does not exist"}
            return
        for index, (digest, size) in enumerate(entry.layers):
            status = f"pulling {digest[7:19]}"
            done = self.downloaded.get(digest, 0)
            yield {"status": status, "digest": digest, "total": size, "completed": done}
            step = max(1, math.ceil(size / plan.steps))
            while done < size:
                await self._pull_gate.wait()
                await asyncio.sleep(plan.step_s)  # the download's pace, on the server side
                done = min(size, done + step)
                self.downloaded[digest] = done
                if index == 0 and done * 2 >= size:
                    if name in plan.fail:
                        yield {"error": plan.fail[name]}
                        return
                    if plan.cut > 0 and done < size:
                        plan.cut -= 1
                        yield {"cut": True}
                        return
                yield {"status": status, "digest": digest, "total": size, "completed": done}
        for status in ("verifying sha256 digest", "writing manifest", "removing any unused layers"):
            yield {"status": status}
        self.models[name] = entry.installed()
        yield {"status": "success"}

    async def _delete(self, request: web.Request) -> web.Response:
        name, refusal = await self._model_in(request)
        if refusal is not None:
            return refusal
        if name not in self.models:
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        self.remove(name)
        return web.Response(status=200)

    async def _model_in(self, request: web.Request) -> tuple[str, web.Response | None]:
        try:
            body = await request.json()
        except ValueError:
            return "", web.json_response({"error": "invalid request body"}, status=400)
        if not isinstance(body, dict):
            return "", web.json_response({"error": "invalid request body"}, status=400)
        name = body.get("model") or body.get("name")
        if not name:
            return "", web.json_response({"error": "model is required"}, status=400)
        if not is_valid_model_name(name):
            return "", web.json_response({"error": "invalid model name"}, status=400)
        return with_tag(str(name)), None

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

    async def _control_library(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        try:
            entry = LibraryModel(**body)
        except TypeError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        self.library[entry.name] = entry
        return web.json_response(self.state())

    async def _control_pull(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        try:
            self.set_pull_plan(PullPlan(**body))
        except TypeError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(self.state())

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._failures])
        app.router.add_get("/", self._root)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/ps", self._ps)
        app.router.add_post("/api/show", self._show)
        app.router.add_post("/api/pull", self._pull)
        app.router.add_delete("/api/delete", self._delete)
        app.router.add_get("/_fake/state", self._control_state)
        app.router.add_post("/_fake/models", self._control_add)
        app.router.add_delete("/_fake/models/{name:.+}", self._control_remove)
        app.router.add_post("/_fake/load", self._control_load)
        app.router.add_post("/_fake/unload", self._control_unload)
        app.router.add_post("/_fake/mode", self._control_mode)
        app.router.add_post("/_fake/reset", self._control_reset)
        app.router.add_post("/_fake/library", self._control_library)
        app.router.add_post("/_fake/pull", self._control_pull)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        # Handlers are cancelled when their client goes away, as Go's request contexts are:
        # that is how a pull learns it was abandoned.
        self._runner = web.AppRunner(self.app(), handle_signals=False, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        self._release.set()
        self._pull_gate.set()
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
    web.run_app(fake.app(), host=args.host, port=args.port, print=None, handler_cancellation=True)


if __name__ == "__main__":
    main()
