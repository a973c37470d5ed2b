"""MediaMTX 调用的接口（不需要 X-API-Key：MediaMTX 无法附加自定义请求头）。

- ``POST /api/mediamtx/auth``：``authMethod: http`` 的鉴权回调，允许返回 200，拒绝返回 401 并给出原因代码；
- ``POST /api/mediamtx/hook?path=<流名>&event=available|unavailable``：``runOnAvailable`` / ``runOnUnavailable`` 钩子，
  配置了 ``MEDIAMTX_API_URL`` 时先向 MediaMTX 核实再启动/停止分析（见 gateway/media/paths.py）。
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from shared.api import MediaMtxAuthRequest, MediaMtxAuthResponse, PathHookRequest, PathHookResponse

from ..media.paths import PathWatcher
from ..signaling.publish_auth import decide
from .api import SettingsDep, StoresDep

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/mediamtx", tags=["MediaMTX 回调"])


def get_paths(request: Request) -> PathWatcher:
    return request.app.state.paths


@router.post("/auth", response_model=MediaMtxAuthResponse, responses={401: {"model": MediaMtxAuthResponse}})
async def mediamtx_auth(body: MediaMtxAuthRequest, stores: StoresDep, settings: SettingsDep) -> JSONResponse:
    session = await stores.sessions.for_path(body.path) if body.action == "publish" and body.path else None
    reason = decide(body, session, settings.mediamtx_read_user, settings.mediamtx_read_password, time.time())
    if reason is not None:
        log.info("mediamtx auth denied: %s %s via %s from %s (%s)", body.action, body.path, body.protocol, body.ip, reason)
        return JSONResponse(MediaMtxAuthResponse(allowed=False, reason=reason).model_dump(), status_code=401)
    return JSONResponse(MediaMtxAuthResponse(allowed=True).model_dump())


@router.post("/hook", response_model=PathHookResponse)
async def mediamtx_hook(
    hook: Annotated[PathHookRequest, Query()], paths: Annotated[PathWatcher, Depends(get_paths)]
) -> PathHookResponse:
    return await paths.on_hook(hook.path, hook.event == "available")


def install(app: FastAPI) -> None:
    app.include_router(router)
