"""教师的复核标记 ``reviews:<id>``（哈希：事件段 ID -> :class:`shared.api.EpisodeReview` JSON；后写的覆盖先写的）。

会话结束后才写入的标记与会话的其余数据同时过期（取会话记录剩下的保留时间）。"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.api import EpisodeReview
from shared.keys import RedisKeys


class ReviewStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    async def save(self, review: EpisodeReview) -> None:
        key = self.keys.reviews(review.session_id)
        ttl_ms = await self.r.pttl(self.keys.session(review.session_id))
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, review.episode_id, review.model_dump_json())
        if ttl_ms > 0:
            pipe.pexpire(key, ttl_ms)
        await pipe.execute()

    async def all(self, session_id: str) -> list[EpisodeReview]:
        raw = await self.r.hvals(self.keys.reviews(session_id))
        return sorted((EpisodeReview.model_validate_json(v) for v in raw), key=lambda r: r.episode_id)
