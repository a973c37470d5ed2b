"""会话时间序列 ``history:<id>``（列表，工作进程每 ``HISTORY_INTERVAL_S`` 秒追加一行，见 workers/output/report_sink.py）。

读出时转成按列的数组（会话页的图表库 uPlot 正要这个形状）；随会话报告一起保留 REPORT_RETENTION_DAYS 天。"""

from __future__ import annotations

import json
import logging

import redis.asyncio as aioredis

from shared.api import HISTORY_FIELDS
from shared.keys import RedisKeys

log = logging.getLogger(__name__)


def to_columns(rows: list[list]) -> dict[str, list]:
    """行 -> 列；列数不对的行（另一版本写入的）跳过。"""
    good = [row for row in rows if isinstance(row, list) and len(row) == len(HISTORY_FIELDS)]
    if len(good) < len(rows):
        log.warning("skipped %d history rows of an unexpected shape", len(rows) - len(good))
    return {name: [row[i] for row in good] for i, name in enumerate(HISTORY_FIELDS)}


class HistoryStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    async def columns(self, session_id: str) -> dict[str, list]:
        raw = await self.r.lrange(self.keys.history(session_id), 0, -1)
        return to_columns([json.loads(line) for line in raw])
