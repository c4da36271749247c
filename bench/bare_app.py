"""The baseline for the ingest benchmark: FastAPI parsing the same heartbeat body and answering
the same shape, with no auth, no event log and no projections."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from obt.api.deps import ClientIdPath
from obt.api.schemas import HeartbeatRequest, HeartbeatResponse

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/agents/{client_id}/heartbeats", response_model=HeartbeatResponse)
async def heartbeat(client_id: ClientIdPath, body: HeartbeatRequest) -> HeartbeatResponse:
    return HeartbeatResponse(
        status="online", models_wanted=False, next_in_s=10.0, server_time=datetime.now(UTC)
    )
