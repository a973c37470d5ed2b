"""会话报告：定稿的报告 ``report:<id>``，以及由汇总 ``aggregate:<id>``、异常事件段 ``episodes:<id>``、
状态变化 ``transitions:<id>``、审计 ``viewers:<id>`` 组装报告（组装本身是 :mod:`gateway.sessions.report` 的纯函数）。"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.api import SessionInfo, SessionReport
from shared.keys import RedisKeys

from ..sessions.report import build_report


class ReportStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    async def stored(self, session_id: str) -> SessionReport | None:
        """会话结束时定稿的报告；还没有（或已过保留期）时 None。"""
        raw = await self.r.get(self.keys.report(session_id))
        return SessionReport.model_validate_json(raw) if raw else None

    async def build(self, info: SessionInfo) -> SessionReport:
        """按 Redis 中当前的汇总数据组装报告（会话未结束时即临时汇总，``final`` 为 false）。"""
        sid = info.session_id
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.aggregate(sid))
        pipe.lrange(self.keys.episodes(sid), 0, -1)
        pipe.lrange(self.keys.transitions(sid), 0, -1)
        pipe.hvals(self.keys.viewers(sid))
        aggregate, episodes, transitions, viewers = await pipe.execute()
        return build_report(info, aggregate, episodes, transitions, viewers)

    async def persist(self, report: SessionReport, retention_s: float, token_digest: str = "") -> None:
        """保存定稿的报告；报告与会话的其余数据（记录、汇总、事件段、状态变化、审计、时间序列、复核标记、令牌索引）
        一起保留 ``retention_s`` 秒。"""
        sid = report.session_id
        ttl = max(1, int(retention_s))
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.keys.report(sid), report.model_dump_json(), ex=ttl)
        k = self.keys
        keys = [k.session(sid), k.aggregate(sid), k.episodes(sid), k.transitions(sid), k.viewers(sid), k.history(sid),
                k.reviews(sid)]
        if token_digest:
            keys.append(k.publish_token(token_digest))
        for key in keys:
            pipe.expire(key, ttl)
        await pipe.execute()
