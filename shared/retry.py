"""重试与退避：网关与工作进程里所有与网络打交道的循环共用这一套（不做 I/O，导入时无副作用）。

- :func:`backoff_delay`：第 n 次连续失败后等多久（指数增长、有上限，可选抖动）；
- :class:`Backoff`：循环里的连续失败计数，成功时清零::

      backoff = Backoff(base_s=0.5, cap_s=5.0)
      while not stop.is_set():
          try:
              step()
              backoff.succeeded()
              delay = interval
          except redis.RedisError:
              delay = backoff.failed()
          stop.wait(delay)

- :func:`retry_async`：一次调用最多试 ``attempts`` 次，其间按退避等待（只重试 ``retryable`` 认可的错误）::

      resp = await retry_async(lambda: client.get(url), attempts=3, base_s=0.2, cap_s=2.0,
                               retryable=lambda exc: isinstance(exc, httpx.TransportError), what="GET /v3/paths")
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def backoff_delay(failures: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """第 ``failures`` 次（从 1 起）连续失败后的等待：``min(cap_s, base_s * 2**(failures-1))``；
    给了 ``rng`` 时再乘以 [0.5, 1) 的抖动（多个客户端同时失败时错开重试）。"""
    delay = min(cap_s, base_s * 2 ** max(0, failures - 1))
    return delay * (0.5 + rng.random() / 2) if rng is not None else delay


class Backoff:
    """循环的连续失败计数与退避时长。``jitter`` 为 True 时带抖动。"""

    def __init__(self, base_s: float, cap_s: float, jitter: bool = False) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0
        self._rng = random.Random() if jitter else None

    def failed(self) -> float:
        """记一次失败，返回下次尝试前应等待的秒数。"""
        self.failures += 1
        return backoff_delay(self.failures, self.base_s, self.cap_s, self._rng)

    def succeeded(self) -> None:
        self.failures = 0


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    base_s: float,
    cap_s: float,
    retryable: Callable[[Exception], bool],
    what: str,
) -> T:
    """执行 ``call``，``retryable(exc)`` 为真的错误最多重试到共 ``attempts`` 次；其余错误与最后一次的错误原样抛出。"""
    backoff = Backoff(base_s, cap_s)
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == attempts or not retryable(exc):
                raise
            delay = backoff.failed()
            log.warning("%s failed (%s), retry %d/%d in %.2fs", what, exc, attempt, attempts - 1, delay)
            await asyncio.sleep(delay)
    raise ValueError("attempts 至少为 1")
