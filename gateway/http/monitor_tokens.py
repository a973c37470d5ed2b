"""教师监控令牌（需要 ``X-API-Key``：由考试系统后端为已登录的教师申请，再交给教师的浏览器）。

- ``POST /api/monitor/token {teacher, exam_id?, ttl_s?}`` -> ``{token, grant_id, expires_at, renew_until}``；
  教师打开 ``/monitor#token=<token>``（``#`` 之后的部分不会发给服务器，不进访问日志）。
- ``POST /api/monitor/revoke {grant_id}``：撤销该授权（含它续期得到的令牌）；本实例上的连接立即断开，
  其他网关实例上的在下一次检查（几秒内）断开。
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request

from shared.api import MonitorTokenRequest, MonitorTokenResponse, RevokeGrantRequest, RevokeGrantResponse
from shared.messages import iso_utc

from ..auth.tokens import MonitorTokens
from ..realtime.sockets import ViewerNamespace
from .api import AUTH_ERRORS, StoresDep, errors, require_api_key

router = APIRouter(
    prefix="/api/monitor", tags=["教师监控令牌"], dependencies=[Depends(require_api_key)], responses=errors(*AUTH_ERRORS)
)


def get_tokens(request: Request) -> MonitorTokens:
    return request.app.state.tokens


def get_viewer_namespaces(request: Request) -> list[ViewerNamespace]:
    return request.app.state.viewer_namespaces


TokensDep = Annotated[MonitorTokens, Depends(get_tokens)]


@router.post("/token", response_model=MonitorTokenResponse, status_code=201)
async def issue_token(body: MonitorTokenRequest, tokens: TokensDep) -> MonitorTokenResponse:
    token, grant = tokens.issue(body.teacher, body.exam_id, body.ttl_s)
    return MonitorTokenResponse(
        token=token, grant_id=grant.grant_id, teacher=grant.teacher, exam_id=grant.exam_id,
        expires_at=iso_utc(grant.expires_at), renew_until=iso_utc(grant.renew_until),
    )


@router.post("/revoke", response_model=RevokeGrantResponse)
async def revoke_grant(
    body: RevokeGrantRequest,
    stores: StoresDep,
    tokens: TokensDep,
    namespaces: Annotated[list[ViewerNamespace], Depends(get_viewer_namespaces)],
) -> RevokeGrantResponse:
    # 授权最晚可能在签发后 MONITOR_TOKEN_MAX_AGE_S 过期：撤销记录保留这么久
    await stores.grants.revoke(body.grant_id, time.time() + tokens.max_age_s)
    dropped = 0
    for ns in namespaces:
        dropped += await ns.expire(time.time())
    return RevokeGrantResponse(grant_id=body.grant_id, disconnected=dropped)


def install(app: FastAPI) -> None:
    app.include_router(router)
