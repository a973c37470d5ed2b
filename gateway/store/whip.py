"""会话当前的 WHIP 资源 ``whip:<id>``（Location 与 offer 的 ICE 凭据）：信令中继建立推流时写入，结束推流时取出删除。"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.api import WhipResource
from shared.keys import RedisKeys


class WhipStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    async def set(self, session_id: str, resource: WhipResource) -> WhipResource | None:
        """记录会话当前的 WHIP 资源，返回被替换的旧资源（学生端重新发起推流时由调用方结束它）。"""
        old = await self.r.getset(self.keys.whip(session_id), resource.model_dump_json())
        return WhipResource.model_validate_json(old) if old else None

    async def get(self, session_id: str) -> WhipResource | None:
        raw = await self.r.get(self.keys.whip(session_id))
        return WhipResource.model_validate_json(raw) if raw else None

    async def pop(self, session_id: str) -> WhipResource | None:
        raw = await self.r.getdel(self.keys.whip(session_id))
        return WhipResource.model_validate_json(raw) if raw else None
