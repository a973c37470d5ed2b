"""会话的流程（REST 与 Socket.IO、心跳超时清理共用）：创建会话（可同时开始拉流）、学生端心跳、读取报告、结束会话。

结束会话：停止拉流并等待所属工作进程释放流，定稿并保存报告，然后结束学生端的推流：有网关建立的 WHIP 资源时
DELETE 它，向学生端发 ``signal.close {reason: session_ended}``，再经 MediaMTX API 踢掉该路径上剩下的发布端（如 RTSP 推流）。"""

from __future__ import annotations

import logging

import httpx
import socketio

from shared import events as ev
from shared.api import CreateSessionRequest, CreateSessionResponse, SessionBase, SessionInfo, SessionReport
from shared.messages import SessionEnded, SignalClose
from shared.settings import Settings
from shared.streams import redact_url

from ..errors import NotFound
from ..media.mediamtx import MediaMtxApi
from ..signaling.relay import SignalingRelay
from ..store import Stores
from ..store.sessions import requested_stream_name
from .streams import StreamService

log = logging.getLogger(__name__)


class SessionService:
    def __init__(
        self,
        stores: Stores,
        streams: StreamService,
        settings: Settings,
        relay: SignalingRelay,
        sio: socketio.AsyncServer,
        mediamtx: MediaMtxApi | None = None,
    ) -> None:
        self.sessions = stores.sessions
        self.liveness = stores.liveness
        self.reports = stores.reports
        self.streams = streams
        self.settings = settings
        self.relay = relay
        self.sio = sio
        self.mediamtx = mediamtx

    async def create(self, req: CreateSessionRequest) -> CreateSessionResponse:
        """创建会话；请求给了 ``rtsp_url`` 时同时开始拉流（主机不被允许时 Rejected、该流正在消费别的地址时 Conflict，
        这两种情况都不创建会话）。响应里的地址不含密码。"""
        if req.rtsp_url:
            await self.streams.check_startable(requested_stream_name(req), req.rtsp_url)
        info, token = await self.sessions.create(req, self.settings.publish_token_ttl_s)
        started = False
        if req.rtsp_url:
            await self.streams.start(info.stream_name, req.rtsp_url, info.session_id)
            started = True
        public = SessionBase.model_validate(info, from_attributes=True).model_dump()
        shown = redact_url(info.rtsp_url) if info.rtsp_url else None
        return CreateSessionResponse(**{**public, "rtsp_url": shown}, publish_token=token, stream_started=started)

    async def heartbeat(self, session_id: str) -> None:
        """记录学生端心跳；会话不存在或已结束时 NotFound。"""
        info = await self.sessions.get(session_id)
        if info is None or info.status == "ENDED":
            raise NotFound(f"会话 {session_id} 不存在或已结束")
        await self.liveness.beat(session_id)

    async def report(self, session_id: str) -> SessionReport:
        """已结束：定稿的报告；进行中：当前的临时汇总（``final`` 为 false）。"""
        stored = await self.reports.stored(session_id)
        if stored is not None:
            return stored
        info = await self.sessions.get(session_id)
        if info is None:
            raise NotFound(f"会话 {session_id} 不存在（或报告已过保留期）")
        return await self.reports.build(info)

    async def end(self, session_id: str, reason: str) -> SessionReport:
        """结束会话（幂等：已结束的会话返回已保存的报告，并再次结束推流）。"""
        info, report = await self._finalise(session_id, reason)
        ended = SessionEnded(session_id=session_id, stream_name=info.stream_name, exam_id=info.exam_id,
                             reason=info.end_reason or reason, ended_at=info.ended_at)
        # 监控墙（广播房间）与会话页（流房间）：卡片标为已结束，会话页显示定稿的报告
        rooms = [ev.ALL_ROOM, ev.stream_room(info.stream_name)] + ([ev.exam_room(info.exam_id)] if info.exam_id else [])
        await self.sio.emit(ev.SESSION_ENDED, ended.model_dump(), namespace=ev.NS_MONITOR, room=rooms)
        await self.relay.release(info)
        close = SignalClose(session_id=session_id, reason="session_ended").model_dump()
        await self.sio.emit(ev.SIGNAL_CLOSE, close, namespace=ev.NS_DEFAULT, room=ev.session_room(session_id))
        await self._kick_publisher(session_id, report.stream_name)
        return report

    async def _finalise(self, session_id: str, reason: str) -> tuple[SessionInfo, SessionReport]:
        """结束会话并定稿报告，返回结束后的会话记录与报告。

        先停止拉流并等待所属工作进程释放流（释放前它会写完最后的汇总增量），再读汇总组装报告，
        报告与会话数据一起保留 REPORT_RETENTION_DAYS 天。流已经不在（推流端早已断开、从未开始）时照样定稿。"""
        info = await self.sessions.require(session_id)
        if info.status == "ENDED":
            stored = await self.reports.stored(session_id)
            if stored is not None:
                return info, stored
        else:
            await self.streams.stop_for_end(info.stream_name)
            info = await self.sessions.mark_ended(info, reason)  # 并发结束时得到先结束者的记录
        report = await self.reports.build(info)
        await self.reports.persist(report, self.settings.report_retention_days * 86400, info.publish_token_sha256)
        return info, report

    async def _kick_publisher(self, session_id: str, stream_name: str) -> None:
        if self.mediamtx is None:
            return
        try:
            kicked = await self.mediamtx.kick_publisher(stream_name)
            if kicked:
                log.info("session %s: publisher %s closed via MediaMTX API", session_id, kicked)
        except httpx.HTTPError as exc:
            # 报告已定稿；发布端随后也会因鉴权失效或心跳停止而断开
            log.warning("session %s: could not close publisher via MediaMTX API: %s", session_id, exc)
