"""结束会话的完整流程（REST end_session 与心跳超时共用）：停止拉流、定稿报告、踢掉 MediaMTX 上的发布端。"""

from __future__ import annotations

import logging

import httpx

from shared.api import SessionReport
from shared.settings import Settings

from .mediamtx import MediaMtxApi
from .store import Store

log = logging.getLogger(__name__)


class SessionService:
    def __init__(self, store: Store, settings: Settings, mediamtx: MediaMtxApi | None = None) -> None:
        self.store = store
        self.settings = settings
        self.mediamtx = mediamtx

    async def end(self, session_id: str, reason: str) -> SessionReport:
        report = await self.store.end_session(
            session_id,
            reason=reason,
            stop_wait_s=self.settings.stop_wait_s,
            retention_s=self.settings.report_retention_days * 86400,
        )
        if self.mediamtx is not None:
            try:
                kicked = await self.mediamtx.kick_publisher(report.stream_name)
                if kicked:
                    log.info("session %s: publisher %s closed via MediaMTX API", session_id, kicked)
            except httpx.HTTPError as exc:
                # 报告已定稿；发布端随后也会因鉴权失效或心跳停止而断开
                log.warning("session %s: could not close publisher via MediaMTX API: %s", session_id, exc)
        return report
