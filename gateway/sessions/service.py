"""结束会话的完整流程（REST end_session 与心跳超时共用）：停止拉流、定稿报告、结束学生端的推流。

推流的结束：有网关建立的 WHIP 资源时 DELETE 它，再经 MediaMTX API 踢掉该路径上剩下的发布端（如 RTSP 推流），
并向学生端发 ``signal.close {reason: session_ended}``。"""

from __future__ import annotations

import logging

import httpx
import socketio

from shared import events as ev
from shared.api import SessionReport
from shared.messages import SignalClose
from shared.settings import Settings

from ..media.mediamtx import MediaMtxApi
from ..signaling.relay import SignalingRelay
from ..store import Store

log = logging.getLogger(__name__)


class SessionService:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        relay: SignalingRelay,
        sio: socketio.AsyncServer,
        mediamtx: MediaMtxApi | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.relay = relay
        self.sio = sio
        self.mediamtx = mediamtx

    async def end(self, session_id: str, reason: str) -> SessionReport:
        report = await self.store.end_session(
            session_id,
            reason=reason,
            stop_wait_s=self.settings.stop_wait_s,
            retention_s=self.settings.report_retention_days * 86400,
        )
        info = await self.store.get_session(session_id)
        if info is not None:
            await self.relay.release(info)
        close = SignalClose(session_id=session_id, reason="session_ended").model_dump()
        await self.sio.emit(ev.SIGNAL_CLOSE, close, namespace=ev.NS_DEFAULT, room=ev.session_room(session_id))
        if self.mediamtx is not None:
            try:
                kicked = await self.mediamtx.kick_publisher(report.stream_name)
                if kicked:
                    log.info("session %s: publisher %s closed via MediaMTX API", session_id, kicked)
            except httpx.HTTPError as exc:
                # 报告已定稿；发布端随后也会因鉴权失效或心跳停止而断开
                log.warning("session %s: could not close publisher via MediaMTX API: %s", session_id, exc)
        return report
