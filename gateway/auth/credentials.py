"""Socket.IO 连接的凭据：``auth = {token}``（教师监控令牌）或 ``auth = {publish_token}``（学生推流令牌）。

用法::

    creds = Credentials(tokens, stores)
    grant = await creds.teacher(auth)      # 过期、伪造、撤销时 TokenRefused
    student = await creds.student(auth)    # 令牌不属于任何未结束的会话时 TokenRefused
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..store import Stores
from .tokens import Grant, MonitorTokens, TokenRefused


@dataclass(frozen=True)
class Student:
    """推流令牌通过校验的学生连接：只属于这一个会话。"""

    session_id: str
    stream_name: str
    token: str


def auth_field(auth: Any, name: str) -> str | None:
    value = auth.get(name) if isinstance(auth, dict) else None
    return value if isinstance(value, str) and value else None


class Credentials:
    def __init__(self, tokens: MonitorTokens, stores: Stores) -> None:
        self.tokens = tokens
        self.stores = stores

    async def teacher(self, auth: Any) -> Grant:
        grant = self.tokens.verify(auth_field(auth, "token"))
        await self.check_not_revoked(grant)
        return grant

    async def check_not_revoked(self, grant: Grant) -> None:
        if await self.stores.grants.revoked([grant.grant_id]):
            raise TokenRefused("token_revoked", "监控令牌已被撤销")

    async def student(self, auth: Any) -> Student:
        token = auth_field(auth, "publish_token")
        if token is None:
            raise TokenRefused("token_missing", "需要监控令牌（auth.token）或推流令牌（auth.publish_token）")
        info = await self.stores.sessions.for_token(token)
        if info is None:
            raise TokenRefused("token_invalid", "推流令牌不属于任何会话")
        if info.status == "ENDED":
            raise TokenRefused("session_ended", "会话已结束")
        return Student(info.session_id, info.stream_name, token)
