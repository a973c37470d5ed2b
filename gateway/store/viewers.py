"""审计：哪次教师授权看过哪个会话 ``viewers:<id>``（哈希，字段 ``<授权>:<方式>``，值为 :class:`shared.api.Viewer` JSON）。

只记每个 (授权, 方式) 的首次时刻（HSETNX），反复写入是幂等的；随会话报告一起保留 REPORT_RETENTION_DAYS 天。"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from shared.api import Viewer
from shared.keys import RedisKeys
from shared.messages import iso_utc


class ViewerStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    async def record(self, session_ids: list[str], teacher: str, grant_id: str, how: str) -> None:
        if not session_ids:
            return
        entry = Viewer(teacher=teacher, grant_id=grant_id, how=how, first_at=iso_utc(time.time())).model_dump_json()
        pipe = self.r.pipeline(transaction=False)
        for sid in session_ids:
            pipe.hsetnx(self.keys.viewers(sid), f"{grant_id}:{how}", entry)
        await pipe.execute()
