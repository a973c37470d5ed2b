"""网关后台任务：结束学生端心跳超时的会话（原因 ``heartbeat_timeout``），以及创建后一直没有媒体、
也没有学生端连上的会话（原因 ``no_media``）。原因记入报告。"""

from __future__ import annotations

import asyncio
import logging

from shared.settings import Settings

from ..errors import NotFound
from ..periodic import run_every
from ..store.liveness import LivenessStore
from .service import SessionService

log = logging.getLogger(__name__)


async def reap_silent_sessions(
    sessions: SessionService, liveness: LivenessStore, settings: Settings, stop: asyncio.Event, interval_s: float = 1.0
) -> None:
    async def step() -> None:
        for reason, claimed in (
            ("heartbeat_timeout", await liveness.claim_silent(settings.heartbeat_timeout_s)),
            ("no_media", await liveness.claim_without_media(settings.no_media_timeout_s)),
        ):
            for session_id in claimed:
                try:
                    await sessions.end(session_id, reason=reason)
                    log.info("session %s ended: %s", session_id, reason)
                except NotFound:
                    pass

    await run_every(interval_s, step, stop, "heartbeat reaper")
