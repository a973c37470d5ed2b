"""monitor.update 的回放缓冲 ``replay:<id>``（工作进程写入最近 ``REPLAY_WINDOW_S`` 秒，分值为毫秒时间戳）的读取。"""

from __future__ import annotations

import json
import time

import redis.asyncio as aioredis

from shared.keys import REPLAY_WINDOW_S, RedisKeys


class ReplayStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    async def recent(self, session_ids: list[str], max_bytes: int) -> list[dict]:
        """这些会话最近 ``REPLAY_WINDOW_S`` 秒的 monitor.update，按时间排序并标记 ``replay: true``；
        合计超过 ``max_bytes`` 时只留最新的那些（一次回放的流量有上限，不随班级人数无限增长）。"""
        if not session_ids:
            return []
        since = int((time.time() - REPLAY_WINDOW_S) * 1000)
        pipe = self.r.pipeline(transaction=False)
        for sid in session_ids:
            pipe.zrangebyscore(self.keys.replay(sid), since, "+inf", withscores=True)
        items = sorted(((score, raw) for rows in await pipe.execute() for raw, score in rows), key=lambda x: -x[0])
        kept, total = [], 0
        for _, raw in items:
            total += len(raw)
            if total > max_bytes:
                break
            kept.append(raw)
        return [{**json.loads(raw), "replay": True} for raw in reversed(kept)]
