"""流任务的启停（REST 的 rtsp/start|stop、路径可用性、结束会话都走这里）与 rtsp/status 的组装。

启动幂等：任务用 HSETNX 写入，同一流已有同地址的任务时返回它；地址不同时 Conflict。
停止：删除任务后等所属工作进程释放租约（释放前它会写完最后的汇总增量），最多等 ``STOP_WAIT_S`` 秒。
"""

from __future__ import annotations

import asyncio
import time

from shared.api import RtspStatusResponse, RtspStopResponse, StreamJob
from shared.messages import iso_utc
from shared.streams import redact_url, rtsp_host_allowed

from ..errors import Conflict, NotFound, Rejected
from ..store import Stores

# 停止后查询租约是否已释放的间隔（秒）
RELEASE_POLL_S = 0.1


class StreamService:
    def __init__(self, stores: Stores, stop_wait_s: float, allowed_hosts: list[str] | None = None) -> None:
        self.streams = stores.streams
        self.sessions = stores.sessions
        self.workers = stores.workers
        self.stop_wait_s = stop_wait_s
        self.allowed_hosts = allowed_hosts or []

    async def start(self, stream_name: str, rtsp_url: str, session_id: str | None) -> tuple[StreamJob, bool]:
        """返回 (任务, 是否新建)。未给会话 ID 时按流名解析（见 :meth:`SessionStore.resolve`）。"""
        self._check_host(rtsp_url)
        if session_id is None:
            session_id = await self.sessions.resolve(stream_name)
        info = await self.sessions.get(session_id)
        job = StreamJob(
            stream_name=stream_name,
            rtsp_url=rtsp_url,
            session_id=session_id,
            created_at=iso_utc(time.time()),
            exam_id=info.exam_id if info is not None else None,
            student_id=info.student_id if info is not None else None,
        )
        if await self.streams.add(job):
            return job, True
        existing = await self.streams.job(stream_name)
        if existing is None:  # 恰好被并发停止：再试一次
            return await self.start(stream_name, rtsp_url, session_id)
        _check_same_url(existing, rtsp_url)
        return existing, False

    async def check_startable(self, stream_name: str | None, rtsp_url: str) -> None:
        """地址的主机不被允许时 Rejected，该流已有指向别的地址的任务时 Conflict（与 :meth:`start` 的检查相同；
        创建会话前先查，不合格时不留下会话）。"""
        self._check_host(rtsp_url)
        existing = await self.streams.job(stream_name) if stream_name is not None else None
        if existing is not None:
            _check_same_url(existing, rtsp_url)

    def _check_host(self, rtsp_url: str) -> None:
        if not rtsp_host_allowed(rtsp_url, self.allowed_hosts):
            raise Rejected("rtsp_url", f"rtsp_url 的主机不在 RTSP_ALLOWED_HOSTS（{', '.join(self.allowed_hosts)}）中")

    async def stop(self, stream_name: str, wait_s: float | None = None) -> RtspStopResponse:
        """删除任务并等待所属工作进程释放租约（``wait_s`` 为 None 时等 ``STOP_WAIT_S`` 秒）；没有该任务时 NotFound。"""
        wait_s = self.stop_wait_s if wait_s is None else wait_s
        owner = await self.streams.owner(stream_name)
        if not await self.streams.remove(stream_name):
            raise NotFound(f"流 {stream_name} 未在消费")
        stopped = owner is None or await self._wait_released(stream_name, wait_s)
        return RtspStopResponse(stream_name=stream_name, stopped=stopped, owner=owner)

    async def stop_for_end(self, stream_name: str) -> None:
        """结束会话时停止它的流：任务已不在（从未开始，或刚被并发的结束、路径不可用删除）时，
        若所属进程还持有租约（正在写最后的汇总增量），同样等它释放，最多 ``STOP_WAIT_S`` 秒。"""
        try:
            await self.stop(stream_name)
        except NotFound:
            if await self.streams.leased(stream_name):
                await self._wait_released(stream_name, self.stop_wait_s)

    async def _wait_released(self, stream_name: str, wait_s: float) -> bool:
        """每 ``RELEASE_POLL_S`` 秒查一次租约，直到释放或超过 ``wait_s`` 秒；返回是否已释放。"""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(RELEASE_POLL_S)
            if not await self.streams.leased(stream_name):
                return True
        return False

    async def status(self) -> RtspStatusResponse:
        """存活的工作进程与每路流的消费状态。"""
        workers = await self.workers.list()
        streams = await self.streams.statuses({w.worker_id for w in workers})
        return RtspStatusResponse(workers=workers, streams=streams)


def _check_same_url(existing: StreamJob, rtsp_url: str) -> None:
    if existing.rtsp_url != rtsp_url:
        raise Conflict(f"流 {existing.stream_name} 已在消费 {redact_url(existing.rtsp_url)}；请先 rtsp/stop")
