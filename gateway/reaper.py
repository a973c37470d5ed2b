"""网关后台任务：结束学生端心跳超时的会话（原因 ``heartbeat_timeout`` 记入报告）。"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from shared.settings import Settings

from .sessions import SessionService
from .store import NotFound

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0


async def reap_silent_sessions(
    sessions: SessionService, settings: Settings, stop: asyncio.Event, interval_s: float = 1.0
) -> None:
    delay = interval_s
    while not stop.is_set():
        try:
            for session_id in await sessions.store.claim_silent_sessions(settings.heartbeat_timeout_s):
                try:
                    await sessions.end(session_id, reason="heartbeat_timeout")
                    log.info("session %s ended: no heartbeat for %.0fs", session_id, settings.heartbeat_timeout_s)
                except NotFound:
                    pass
            delay = interval_s
        except RedisError as exc:
            delay = min(MAX_BACKOFF_S, delay * 2)
            log.warning("heartbeat reaper: redis error (%s), retry in %.1fs", exc, delay)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            pass
