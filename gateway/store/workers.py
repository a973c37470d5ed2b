"""工作进程：存活集合 ``workers``（进程 ID -> 最近心跳）与各进程上报的状态 ``worker:<id>``；以及 Redis 本身的连通检查。"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.api import WorkerStatus
from shared.keys import RedisKeys, as_text


class WorkerStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    async def list(self) -> list[WorkerStatus]:
        """状态尚未过期的工作进程。"""
        ids = [as_text(i) for i in await self.r.zrange(self.keys.workers, 0, -1)]
        if not ids:
            return []
        raw = await self.r.mget([self.keys.worker(i) for i in ids])
        return [WorkerStatus.model_validate_json(v) for v in raw if v is not None]

    async def alive(self) -> int:
        return len(await self.list())

    async def ping(self) -> bool:
        try:
            return bool(await self.r.ping())
        except Exception:  # noqa: BLE001 - 健康检查只报告状态
            return False
