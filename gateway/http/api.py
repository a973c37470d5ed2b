"""REST 接口（/api/...）。除 /api/health 外都要求 ``X-API-Key``。路由只做解析与转交，流程在 gateway/sessions 的服务里。"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from redis.exceptions import RedisError

from shared.api import (
    CreateSessionRequest,
    CreateSessionResponse,
    EndSessionRequest,
    HealthResponse,
    RtspStartRequest,
    RtspStartResponse,
    RtspStatusResponse,
    RtspStopRequest,
    RtspStopResponse,
    SessionReport,
)
from shared.settings import Settings
from shared.streams import redact_url

from ..errors import Conflict, NotFound, Rejected
from ..sessions.service import SessionService
from ..sessions.streams import StreamService
from ..store import Stores

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="后端调用所需的 API Key")


def get_stores(request: Request) -> Stores:
    return request.app.state.stores


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def require_api_key(
    request: Request, key: Annotated[str | None, Security(_api_key_header)] = None
) -> None:
    expected = get_settings(request).api_key.encode()
    if key is None or not secrets.compare_digest(key.encode(), expected):
        raise HTTPException(status_code=401, detail="缺少或错误的 X-API-Key", headers={"WWW-Authenticate": "ApiKey"})


def get_sessions(request: Request) -> SessionService:
    return request.app.state.sessions


def get_streams(request: Request) -> StreamService:
    return request.app.state.streams


StoresDep = Annotated[Stores, Depends(get_stores)]
SessionsDep = Annotated[SessionService, Depends(get_sessions)]
StreamsDep = Annotated[StreamService, Depends(get_streams)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

protected = APIRouter(prefix="/api", dependencies=[Depends(require_api_key)])
public = APIRouter(prefix="/api")


@protected.post("/create_session", response_model=CreateSessionResponse, status_code=201)
async def create_session(body: CreateSessionRequest, sessions: SessionsDep) -> CreateSessionResponse:
    return await sessions.create(body)


@protected.post("/end_session", response_model=SessionReport)
async def end_session(body: EndSessionRequest, sessions: SessionsDep) -> SessionReport:
    return await sessions.end(body.session_id, reason="end_session")


@protected.get("/sessions/{session_id}/report", response_model=SessionReport)
async def session_report(session_id: str, sessions: SessionsDep) -> SessionReport:
    return await sessions.report(session_id)


@protected.post("/rtsp/start", response_model=RtspStartResponse)
async def rtsp_start(body: RtspStartRequest, streams: StreamsDep) -> RtspStartResponse:
    job, created = await streams.start(body.stream_name, body.rtsp_url, body.session_id)
    return RtspStartResponse(**{**job.model_dump(), "rtsp_url": redact_url(job.rtsp_url)}, created=created)


@protected.post("/rtsp/stop", response_model=RtspStopResponse)
async def rtsp_stop(body: RtspStopRequest, streams: StreamsDep) -> RtspStopResponse:
    return await streams.stop(body.stream_name)


@protected.get("/rtsp/status", response_model=RtspStatusResponse)
async def rtsp_status(streams: StreamsDep) -> RtspStatusResponse:
    return await streams.status()


@public.get("/health", response_model=HealthResponse)
async def health(stores: StoresDep) -> JSONResponse:
    redis_ok = await stores.workers.ping()
    workers = await stores.workers.alive() if redis_ok else 0
    body = HealthResponse(status="ok" if redis_ok else "degraded", redis=redis_ok, workers_alive=workers)
    return JSONResponse(body.model_dump(), status_code=200 if redis_ok else 503)


def install(app: FastAPI) -> None:
    app.include_router(protected)
    app.include_router(public)

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Rejected)
    async def _rejected(_request: Request, exc: Rejected) -> JSONResponse:
        error = {"type": "value_error", "loc": ["body", exc.field], "msg": str(exc)}
        return JSONResponse({"detail": [error]}, status_code=422)

    @app.exception_handler(Conflict)
    async def _conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RedisError)
    async def _redis_down(_request: Request, exc: RedisError) -> JSONResponse:
        return JSONResponse({"detail": f"Redis 不可用: {exc}"}, status_code=503)
