"""网关后台任务的公共循环：每隔一段时间执行一步，出错时指数退避（有上限），收到停止信号即退出。"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def run_every(
    interval_s: float,
    step: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    what: str,
    max_backoff_s: float = 10.0,
) -> None:
    """``step`` 的任何异常都只记录并退避：后台循环不能因一次意外而永久停止。"""
    delay = interval_s
    while not stop.is_set():
        try:
            await step()
            delay = interval_s
        except Exception as exc:  # noqa: BLE001
            delay = min(max_backoff_s, delay * 2)
            log.warning("%s failed (%s), retry in %.1fs", what, exc, delay)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            pass
