"""网关后台任务：结束学生端心跳超时的会话（原因 ``heartbeat_timeout`` 记入报告）。"""

from __future__ import annotations

import asyncio
import logging

from shared.settings import Settings

from .periodic import run_every
from .sessions import SessionService
from .store import NotFound

log = logging.getLogger(__name__)


async def reap_silent_sessions(
    sessions: SessionService, settings: Settings, stop: asyncio.Event, interval_s: float = 1.0
) -> None:
    async def step() -> None:
        for session_id in await sessions.store.claim_silent_sessions(settings.heartbeat_timeout_s):
            try:
                await sessions.end(session_id, reason="heartbeat_timeout")
                log.info("session %s ended: no heartbeat for %.0fs", session_id, settings.heartbeat_timeout_s)
            except NotFound:
                pass

    await run_every(interval_s, step, stop, "heartbeat reaper")
