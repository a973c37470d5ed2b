"""网关后台任务的公共循环：每隔一段时间执行一步，出错时指数退避（有上限，见 shared/retry.py），收到停止信号即退出。"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from shared.retry import Backoff

log = logging.getLogger(__name__)


async def run_every(
    interval_s: float,
    step: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    what: str,
    max_backoff_s: float = 10.0,
) -> None:
    """``step`` 的任何异常都只记录并退避：后台循环不能因一次意外而永久停止。

    连续失败时的等待从 ``2 * interval_s`` 起每次加倍，不超过 ``max_backoff_s``；成功一次后回到 ``interval_s``。"""
    backoff = Backoff(base_s=2 * interval_s, cap_s=max_backoff_s)
    while not stop.is_set():
        try:
            await step()
            backoff.succeeded()
            delay = interval_s
        except Exception as exc:  # noqa: BLE001
            delay = backoff.failed()
            log.warning("%s failed (%s), retry in %.1fs", what, exc, delay)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            pass
