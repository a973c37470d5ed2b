"""REST 接口（/api/...）。除 /api/health 外都要求 ``X-API-Key``。路由只做解析与转交，流程在 gateway/sessions 的服务里。

同一来源 IP 的鉴权失败（错误的 API Key 等）超过 ``AUTH_FAILURES_PER_MINUTE`` 后，该 IP 的请求一律 429，直到额度恢复。
每个路由在 OpenAPI 中列出它可能返回的全部错误状态（``ERRORS``）。"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from redis.exceptions import RedisError

from shared.api import (
    CreateSessionRequest,
    CreateSessionResponse,
    EndSessionRequest,
    ErrorResponse,
    HealthResponse,
    RtspStartRequest,
    RtspStartResponse,
    RtspStatusResponse,
    RtspStopRequest,
    RtspStopResponse,
    SessionReport,
)
from shared.settings import Settings
from shared.streams import ID_PATTERN, redact_url

from ..auth.limits import KeyedLimiter
from ..errors import Conflict, NotFound, Rejected
from ..metrics import GatewayMetrics
from ..sessions.service import SessionService
from ..sessions.streams import StreamService
from ..store import Stores

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="后端调用所需的 API Key")


def get_stores(request: Request) -> Stores:
    return request.app.state.stores


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_failures(request: Request) -> KeyedLimiter:
    return request.app.state.auth_failures


def get_metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def refuse_if_blocked(request: Request, key: str | None = None) -> None:
    """该来源（默认为请求的 IP）鉴权失败太多次时 429。"""
    if get_failures(request).blocked(key or client_ip(request)):
        raise HTTPException(status_code=429, detail="鉴权失败次数太多，请稍后再试", headers={"Retry-After": "60"})


def note_failure(request: Request, endpoint: str, reason: str, key: str | None = None) -> None:
    """记一次鉴权失败（计入该来源的限额与指标）。"""
    get_failures(request).allow(key or client_ip(request))
    get_metrics(request).auth_refusals.labels(endpoint, reason).inc()


def require_api_key(
    request: Request, key: Annotated[str | None, Security(_api_key_header)] = None
) -> None:
    refuse_if_blocked(request)
    expected = get_settings(request).api_key.encode()
    if key is None or not secrets.compare_digest(key.encode(), expected):
        note_failure(request, "api_key", "missing" if key is None else "invalid")
        raise HTTPException(status_code=401, detail="缺少或错误的 X-API-Key", headers={"WWW-Authenticate": "ApiKey"})


def errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI 中一个路由可能返回的错误状态。"""
    text = {
        401: "缺少或错误的凭据", 404: "会话或流不存在", 409: "与现有状态冲突", 422: "请求不合法",
        429: "鉴权失败次数太多", 503: "Redis 不可用",
    }
    return {code: {"model": ErrorResponse, "description": text[code]} for code in codes}


# 需要 API Key 的路由都可能返回这些
AUTH_ERRORS = (401, 422, 429, 503)


def get_sessions(request: Request) -> SessionService:
    return request.app.state.sessions


def get_streams(request: Request) -> StreamService:
    return request.app.state.streams


StoresDep = Annotated[Stores, Depends(get_stores)]
SessionsDep = Annotated[SessionService, Depends(get_sessions)]
StreamsDep = Annotated[StreamService, Depends(get_streams)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

protected = APIRouter(prefix="/api", dependencies=[Depends(require_api_key)], responses=errors(*AUTH_ERRORS))
public = APIRouter(prefix="/api")


@protected.post("/create_session", response_model=CreateSessionResponse, status_code=201, responses=errors(409))
async def create_session(body: CreateSessionRequest, sessions: SessionsDep) -> CreateSessionResponse:
    return await sessions.create(body)


@protected.post("/end_session", response_model=SessionReport, responses=errors(404))
async def end_session(body: EndSessionRequest, sessions: SessionsDep) -> SessionReport:
    return await sessions.end(body.session_id, reason="end_session")


@protected.get("/sessions/{session_id}/report", response_model=SessionReport, responses=errors(404))
async def session_report(session_id: Annotated[str, Path(pattern=ID_PATTERN)], sessions: SessionsDep) -> SessionReport:
    return await sessions.report(session_id)


@protected.post("/rtsp/start", response_model=RtspStartResponse, responses=errors(409))
async def rtsp_start(body: RtspStartRequest, streams: StreamsDep) -> RtspStartResponse:
    job, created = await streams.start(body.stream_name, body.rtsp_url, body.session_id)
    return RtspStartResponse(**{**job.model_dump(), "rtsp_url": redact_url(job.rtsp_url)}, created=created)


@protected.post("/rtsp/stop", response_model=RtspStopResponse, responses=errors(404))
async def rtsp_stop(body: RtspStopRequest, streams: StreamsDep) -> RtspStopResponse:
    return await streams.stop(body.stream_name)


@protected.get("/rtsp/status", response_model=RtspStatusResponse)
async def rtsp_status(streams: StreamsDep) -> RtspStatusResponse:
    return await streams.status()


@public.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse, "description": "Redis 不可用"}})
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
