"""网关后台任务：结束学生端心跳超时的会话（原因 ``heartbeat_timeout``），以及创建后一直没有媒体、
也没有学生端连上的会话（原因 ``no_media``）。原因记入报告。"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from shared.settings import Settings

from ..errors import NotFound
from ..periodic import run_every
from ..store.liveness import LivenessStore
from .service import SessionService

log = logging.getLogger(__name__)


async def reap_silent_sessions(
    sessions: SessionService, liveness: LivenessStore, settings: Settings, stop: asyncio.Event, interval_s: float = 1.0
) -> None:
    await run_every(interval_s, lambda: reap_once(sessions, liveness, settings), stop, "heartbeat reaper")


async def reap_once(sessions: SessionService, liveness: LivenessStore, settings: Settings) -> None:
    """一次扫描：认领超时的会话并逐个结束。某个会话结束失败时放回集合（下一次扫描再试），其余的照常结束。"""
    for reason, claimed, requeue in (
        ("heartbeat_timeout", await liveness.claim_silent(settings.heartbeat_timeout_s), liveness.requeue_silent),
        ("no_media", await liveness.claim_without_media(settings.no_media_timeout_s), liveness.requeue_awaiting_media),
    ):
        for session_id in claimed:
            try:
                await sessions.end(session_id, reason=reason)
                log.info("session %s ended: %s", session_id, reason)
            except NotFound:
                pass
            except Exception as exc:  # noqa: BLE001 - 一个会话出错不影响同批的其他会话
                log.warning("session %s: ending (%s) failed, will retry: %s", session_id, reason, exc)
                try:
                    await requeue(session_id)
                except RedisError as again:
                    log.error("session %s: could not requeue for cleanup: %s", session_id, again)
