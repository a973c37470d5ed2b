"""MediaMTX 调用的接口（不需要 X-API-Key：MediaMTX 无法附加自定义请求头）。

- ``POST /api/mediamtx/auth``：``authMethod: http`` 的鉴权回调，允许返回 200，拒绝返回 401 并给出原因代码。
  调用方须带共享密钥 ``MEDIAMTX_AUTH_SECRET``（HTTP Basic 的密码；MediaMTX 的 ``authHTTPAddress`` 写成
  ``http://mediamtx:<密钥>@gateway:8000/api/mediamtx/auth``，Go 的 HTTP 客户端据此发 Basic 头）；
  同一客户端 IP（请求体的 ``ip``）猜错令牌太多次后 429，不再校验；
- ``POST /api/mediamtx/hook?path=<流名>&event=available|unavailable``：``runOnAvailable`` / ``runOnUnavailable`` 钩子，
  配置了 ``MEDIAMTX_API_URL`` 时先向 MediaMTX 核实再启动/停止分析（见 gateway/media/paths.py）。
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from shared.api import MediaMtxAuthRequest, MediaMtxAuthResponse, PathHookRequest, PathHookResponse

from ..digest import same_secret
from ..media.paths import PathWatcher
from ..signaling.publish_auth import decide
from .api import SettingsDep, StoresDep, errors, note_failure, refuse_if_blocked

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/mediamtx", tags=["MediaMTX 回调"])
_basic = HTTPBasic(auto_error=False, description="MediaMTX 的共享密钥（密码为 MEDIAMTX_AUTH_SECRET）")


def get_paths(request: Request) -> PathWatcher:
    return request.app.state.paths


@router.post(
    "/auth",
    response_model=MediaMtxAuthResponse,
    responses={401: {"model": MediaMtxAuthResponse, "description": "拒绝"}, **errors(422, 429, 503)},
)
async def mediamtx_auth(
    request: Request,
    body: MediaMtxAuthRequest,
    stores: StoresDep,
    settings: SettingsDep,
    caller: Annotated[HTTPBasicCredentials | None, Depends(_basic)] = None,
) -> JSONResponse:
    refuse_if_blocked(request)
    secret = settings.mediamtx_auth_secret
    if secret and (caller is None or not same_secret(caller.password, secret)):  # 只有开发模式允许不设密钥
        note_failure(request, "mediamtx_auth", "bad_caller_secret")
        return JSONResponse(MediaMtxAuthResponse(allowed=False, reason="caller_not_mediamtx").model_dump(), status_code=401)
    client = f"client:{body.ip or 'unknown'}"
    refuse_if_blocked(request, client)
    session = await stores.sessions.for_path(body.path) if body.action == "publish" and body.path else None
    reason = decide(body, session, settings.mediamtx_read_user, settings.mediamtx_read_password, time.time())
    if reason is not None:
        note_failure(request, "mediamtx_auth", reason, client)
        log.info("mediamtx auth denied: %s %s via %s from %s (%s)", body.action, body.path, body.protocol, body.ip, reason)
        return JSONResponse(MediaMtxAuthResponse(allowed=False, reason=reason).model_dump(), status_code=401)
    return JSONResponse(MediaMtxAuthResponse(allowed=True).model_dump())


@router.post("/hook", response_model=PathHookResponse, responses=errors(422, 503))
async def mediamtx_hook(
    hook: Annotated[PathHookRequest, Query()], paths: Annotated[PathWatcher, Depends(get_paths)]
) -> PathHookResponse:
    return await paths.on_hook(hook.path, hook.event == "available")


def install(app: FastAPI) -> None:
    app.include_router(router)
