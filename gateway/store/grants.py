"""已撤销的教师监控授权 ``revoked_grant:<gid>``：保留到该授权最晚可能的过期时刻，之后令牌自己就过期了。"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from shared.keys import RedisKeys


class GrantStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    async def revoke(self, grant_id: str, renew_until: float) -> None:
        ttl = max(1, int(renew_until - time.time()) + 60)
        await self.r.set(self.keys.revoked_grant(grant_id), "1", ex=ttl)

    async def revoked(self, grant_ids: list[str]) -> set[str]:
        """``grant_ids`` 中已撤销的那些。"""
        if not grant_ids:
            return set()
        flags = await self.r.mget([self.keys.revoked_grant(g) for g in grant_ids])
        return {g for g, flag in zip(grant_ids, flags) if flag}
