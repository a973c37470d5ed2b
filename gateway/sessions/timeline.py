"""会话页的数据与教师的复核标记：

- :meth:`TimelineService.timeline`：整场的时间序列、报告（进行中为临时汇总）与复核标记；
- :meth:`TimelineService.review`：把一个已结束的异常事件段标为已复核（或取消）并附备注，保存后发
  ``monitor.review`` 给正在看这个会话（订阅了它的流房间）的全部教师连接，跨网关实例。

用法::

    timelines = TimelineService(stores, sessions, sio)
    data = await timelines.timeline(info)
    review = await timelines.review(info, ReviewRequest(...), teacher="t-01")
"""

from __future__ import annotations

import time

import socketio

from shared import events as ev
from shared.api import EpisodeReview, SessionInfo, SessionTimeline
from shared.keys import HISTORY_INTERVAL_S
from shared.messages import ReviewRequest, iso_utc

from ..errors import NotFound
from ..store import Stores
from .service import SessionService


class TimelineService:
    def __init__(self, stores: Stores, sessions: SessionService, sio: socketio.AsyncServer) -> None:
        self.stores = stores
        self.sessions = sessions
        self.sio = sio

    async def timeline(self, info: SessionInfo) -> SessionTimeline:
        sid = info.session_id
        return SessionTimeline(
            session_id=sid, stream_name=info.stream_name, exam_id=info.exam_id, student_id=info.student_id,
            status=info.status, history=await self.stores.history.columns(sid), history_interval_s=HISTORY_INTERVAL_S,
            report=await self.sessions.report(info.session_id), reviews=await self.stores.reviews.all(sid),
        )

    async def review(self, info: SessionInfo, req: ReviewRequest, teacher: str) -> EpisodeReview:
        """保存复核标记；事件段不存在（事件段还没结束时也还不在报告里）时 NotFound。"""
        report = await self.sessions.report(info.session_id)
        if not any(ep.episode_id == req.episode_id for ep in report.anomalies):
            raise NotFound(f"会话 {req.session_id} 没有已结束的事件段 {req.episode_id}")
        review = EpisodeReview(
            session_id=req.session_id, episode_id=req.episode_id, reviewed=req.reviewed, note=req.note,
            teacher=teacher, at=iso_utc(time.time()),
        )
        await self.stores.reviews.save(review)
        await self.sio.emit(ev.MONITOR_REVIEW, review.model_dump(), namespace=ev.NS_MONITOR,
                            room=ev.stream_room(info.stream_name))
        return review
