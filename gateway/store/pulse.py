"""学生端上传的编码前皮肤颜色样本（``ppg.samples``）：Redis 流 ``ppg:<id>``，限长并带过期，由所属工作进程读取。"""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from shared.keys import PPG_STREAM_MAXLEN, PPG_STREAM_TTL_S, RedisKeys
from shared.messages import PpgSamples


class PulseStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    async def add(self, session_id: str, batch: PpgSamples) -> None:
        """追加一批样本（只保留最近 ``PPG_STREAM_MAXLEN`` 批；会话不再上传后整条流过期）。"""
        key = self.keys.ppg(session_id)
        pipe = self.r.pipeline(transaction=False)
        pipe.xadd(key, {"samples": json.dumps(batch.samples, separators=(",", ":"))}, maxlen=PPG_STREAM_MAXLEN, approximate=False)
        pipe.expire(key, PPG_STREAM_TTL_S)
        await pipe.execute()
