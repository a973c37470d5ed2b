"""学生端是否还在：心跳集合 ``heartbeats``（会话 -> 最近一次心跳，毫秒）与等待媒体集合 ``awaiting_media``
（会话 -> 创建时刻，毫秒），以及清理任务对超时会话的认领。

认领逐个 ZREM：多个网关同时扫描时每个会话只由一个网关结束。会话的创建与结束在会话记录的同一事务里
加入 / 移出这两个集合（:meth:`LivenessStore.await_media`、:meth:`LivenessStore.forget` 只往调用方的事务里添加命令）。
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from shared.keys import RedisKeys, as_text


class LivenessStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    def await_media(self, pipe: Pipeline, session_id: str, created_ms: int) -> None:
        """（在调用方的事务里）新会话进入等待媒体集合。"""
        pipe.zadd(self.keys.awaiting_media, {session_id: created_ms})

    def forget(self, pipe: Pipeline, session_id: str) -> None:
        """（在调用方的事务里）已结束的会话移出心跳与等待媒体两个集合。"""
        pipe.zrem(self.keys.heartbeats, session_id)
        pipe.zrem(self.keys.awaiting_media, session_id)

    async def beat(self, session_id: str) -> None:
        """记录一次学生端心跳。"""
        await self.r.zadd(self.keys.heartbeats, {session_id: int(time.time() * 1000)})

    async def claim_silent(self, timeout_s: float) -> list[str]:
        """心跳超时的会话（逐个 ZREM 认领）。"""
        cutoff = int((time.time() - timeout_s) * 1000)
        silent = [as_text(s) for s in await self.r.zrangebyscore(self.keys.heartbeats, "-inf", cutoff)]
        return [sid for sid in silent if await self.r.zrem(self.keys.heartbeats, sid)]

    async def claim_without_media(self, timeout_s: float) -> list[str]:
        """创建超过 ``timeout_s`` 仍没有媒体（汇总里没有媒体状态）也没有学生端心跳的会话（逐个 ZREM 认领）。

        有媒体或有心跳的会话移出等待集合，此后由 DEGRADED 判断与心跳超时负责。"""
        cutoff = int((time.time() - timeout_s) * 1000)
        due = [as_text(s) for s in await self.r.zrangebyscore(self.keys.awaiting_media, "-inf", cutoff)]
        claimed = []
        for sid in due:
            pipe = self.r.pipeline(transaction=False)
            pipe.hexists(self.keys.aggregate(sid), "state")
            pipe.zscore(self.keys.heartbeats, sid)
            has_media, beat = await pipe.execute()
            if await self.r.zrem(self.keys.awaiting_media, sid) and not has_media and beat is None:
                claimed.append(sid)
        return claimed

    async def requeue_silent(self, session_id: str) -> None:
        """认领后没能结束的会话放回心跳集合，下一次扫描立即再认领；其间有了新心跳则以新心跳为准（NX）。"""
        await self.r.zadd(self.keys.heartbeats, {session_id: 0}, nx=True)

    async def requeue_awaiting_media(self, session_id: str) -> None:
        """认领后没能结束的会话放回等待媒体集合，下一次扫描再判断（其间媒体或心跳到达则不再结束）。"""
        await self.r.zadd(self.keys.awaiting_media, {session_id: 0}, nx=True)
