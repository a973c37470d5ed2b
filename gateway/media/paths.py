"""MediaMTX 路径可用性 -> 启动/停止分析（不需要考试后端调用 rtsp/start）。

两个来源，结果相同且可重复：
- 钩子：MediaMTX 的 ``runOnAvailable`` / ``runOnUnavailable`` 调用 ``POST /api/mediamtx/hook``（快，但可能丢）；
- 轮询：每 ``MEDIAMTX_POLL_S`` 秒读 ``/v3/paths/list`` 对账（补上丢失的钩子、网关重启期间的变化）。

只处理绑定到未结束会话的路径。启动用 ``HSETNX`` 写任务，所以不论钩子、轮询、多个网关同时发现，
每次可用只启动一次，也只由启动者向学生端发一次 ``signal.ready``。停止只针对由本机制启动的任务
（rtsp_url 指向 MediaMTX 的该路径），不影响后端用 rtsp/start 直接指定的外部流。
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import socketio

from shared import events as ev
from shared.api import PathHookResponse
from shared.messages import SignalReady
from shared.settings import Settings

from ..errors import Conflict, NotFound
from ..periodic import run_every
from ..sessions.streams import StreamService
from ..store import Stores
from .mediamtx import MediaMtxApi

log = logging.getLogger(__name__)


class PathWatcher:
    def __init__(
        self, stores: Stores, streams: StreamService, settings: Settings, mediamtx: MediaMtxApi | None, sio: socketio.AsyncServer
    ) -> None:
        self.sessions = stores.sessions
        self.jobs = stores.streams
        self.streams = streams
        self.settings = settings
        self.mediamtx = mediamtx
        self.sio = sio

    def rtsp_url(self, path: str) -> str:
        return f"{self.settings.mediamtx_rtsp_url.rstrip('/')}/{path}"

    async def on_hook(self, path: str, available: bool) -> PathHookResponse:
        """钩子通知。配置了 MediaMTX API 时以它为准（钩子只是提示，伪造的通知不会启动或停止分析）；
        API 核实不了时不做任何事（失败即拒绝），由定期对账在 API 恢复后补上。"""
        if self.mediamtx is not None:
            try:
                available = await self.mediamtx.path_available(path)
            except httpx.HTTPError as exc:
                log.warning("path %s: hook ignored, MediaMTX API could not confirm it (%s)", path, exc)
                return PathHookResponse(path=path, available=available, action="none")
        return await self.apply(path, available)

    async def apply(self, path: str, available: bool) -> PathHookResponse:
        info = await self.sessions.for_path(path)
        if info is None or info.status == "ENDED":
            return PathHookResponse(path=path, available=available, action="none")
        if available:
            try:
                _job, created = await self.streams.start(path, self.rtsp_url(path), info.session_id)
            except Conflict:  # 后端已用 rtsp/start 为该流指定了别的地址
                return PathHookResponse(path=path, available=True, action="none", session_id=info.session_id)
            if created:
                log.info("path %s available: analysis started for session %s", path, info.session_id)
                ready = SignalReady(session_id=info.session_id).model_dump()
                await self.sio.emit(ev.SIGNAL_READY, ready, namespace=ev.NS_DEFAULT, room=ev.session_room(info.session_id))
            return PathHookResponse(
                path=path, available=True, action="started" if created else "none", session_id=info.session_id
            )
        stopped = await self._stop_ours(path)
        return PathHookResponse(
            path=path, available=False, action="stopped" if stopped else "none", session_id=info.session_id
        )

    async def _stop_ours(self, path: str) -> bool:
        job = await self.jobs.job(path)
        if job is None or job.rtsp_url != self.rtsp_url(path):
            return False
        try:
            await self.streams.stop(path, wait_s=0)
        except NotFound:
            return False
        log.info("path %s unavailable: analysis stopped", path)
        return True

    async def reconcile(self) -> None:
        """一次对账：可读的已绑定路径都在分析，由本机制启动、已不可读的都停止。"""
        assert self.mediamtx is not None
        available = await self.mediamtx.available_paths()
        running = {job.stream_name for job in await self.jobs.jobs() if job.rtsp_url == self.rtsp_url(job.stream_name)}
        for path in sorted(available - running):
            await self.apply(path, True)
        for path in sorted(running - available):
            await self.apply(path, False)

    async def poll_forever(self, stop: asyncio.Event) -> None:
        if self.mediamtx is not None:
            await run_every(self.settings.mediamtx_poll_s, self.reconcile, stop, "MediaMTX path poll")
