"""shared.retry：全部网络循环共用的退避与有限次重试。"""

from __future__ import annotations

import asyncio

import pytest

from shared.retry import Backoff, retry_async


def test_backoff_counts_consecutive_failures_and_resets_on_success() -> None:
    backoff = Backoff(base_s=0.5, cap_s=3.0)
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.succeeded()
    assert backoff.failed() == 0.5


def test_retry_async_retries_only_what_it_may_and_gives_up_after_attempts() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "ok"

    async def refused() -> str:
        calls.append(1)
        raise PermissionError("no")

    retry = dict(base_s=0.01, cap_s=0.02, retryable=lambda exc: isinstance(exc, ConnectionError), what="t")
    assert asyncio.run(retry_async(flaky, attempts=3, **retry)) == "ok" and len(calls) == 3
    calls.clear()
    with pytest.raises(ConnectionError):
        asyncio.run(retry_async(flaky, attempts=2, **retry))
    assert len(calls) == 2
    calls.clear()
    with pytest.raises(PermissionError):
        asyncio.run(retry_async(refused, attempts=5, **retry))
    assert len(calls) == 1, "不可重试的错误不重试"
