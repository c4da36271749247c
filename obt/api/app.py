"""The FastAPI application: routers, error mapping, middleware, dashboard; built by create_app."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.routing import WebSocketRoute

from obt import __version__
from obt.api import agents, alerts, audit, operations, reads, system
from obt.api.body import document_bodies
from obt.api.channel import CHANNEL_PATH, AgentChannelEndpoint, ChannelShortcut
from obt.api.channel_registry import ChannelRegistry
from obt.api.errors import install_error_handlers
from obt.api.middleware import Edge
from obt.api.ratelimit import RateLimiter
from obt.api.static import default_dashboard_dir, mount_dashboard
from obt.bootstrap import OBT, bootstrap
from obt.jobs.operations import attach_operations
from obt.metrics import Metrics
from obt.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """A live, auditable registry of the machines that run Ollama.

Agents authenticate with `Authorization: Bearer <token>`: the enrollment token to register,
then the client secret issued at first registration. Admin actions take the admin token.
Errors are JSON `{"code": ..., "detail": ...}`."""


def create_app(settings: Settings, *, obt: OBT | None = None, start: bool = True) -> FastAPI:
    """Build the app; without `obt`, the lifespan bootstraps (and later stops) one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = obt is None
        instance = obt or await bootstrap(settings, metrics=metrics)
        app.state.obt = instance
        if owned and start:
            await instance.start()
        # Fleet operations go out over the channels and their frames come back through them.
        attach_operations(instance.jobs, channels)
        stop_sweeps = asyncio.Event()
        sweeps = asyncio.create_task(channels.run(stop_sweeps), name="channel-idle-sweeps")
        try:
            yield
        finally:
            stop_sweeps.set()
            await sweeps
            # Every channel closed ("server stopping") and its end recorded, then the store.
            await channels.close_all()
            if owned:
                await instance.stop()

    app = FastAPI(
        title="OBT",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    metrics = obt.metrics if obt is not None else Metrics()
    app.state.metrics = metrics
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_min)
    app.state.server_tag = uuid.uuid4().hex[:8]  # prefixes generated request ids
    channels = ChannelRegistry(idle_timeout_s=settings.heartbeat_timeout_s)
    app.state.channels = channels
    if obt is not None:
        app.state.obt = obt
    install_error_handlers(app)

    v1 = APIRouter(prefix="/api/v1")
    v1.include_router(agents.router)
    v1.include_router(reads.router)
    v1.include_router(audit.router)
    v1.include_router(system.router)
    v1.include_router(alerts.router)
    v1.include_router(operations.router)
    app.include_router(v1)
    app.include_router(system.root_router)
    app.router.routes.append(
        WebSocketRoute(CHANNEL_PATH, AgentChannelEndpoint(), name="agent_channel")
    )
    document_bodies(app)
    mount_dashboard(app, settings.dashboard_dir or default_dashboard_dir())

    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    shortcut = agents.HeartbeatShortcut(v1.prefix)
    app.add_middleware(
        Edge,
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
        body_timeout_s=settings.body_timeout_s,
        shortcut=shortcut,
        channel=ChannelShortcut(),
    )
    return app
