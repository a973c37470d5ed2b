"""令牌桶限速：Socket.IO 每连接的事件数、每来源 IP 的鉴权失败次数共用这一个机制。

用法::

    failures = KeyedLimiter(rate_per_s=20 / 60, burst=20)
    if not failures.allow(ip):   # 消耗一个令牌；桶空时 False
        ...  # 429
"""

from __future__ import annotations

import time
from collections import OrderedDict


class TokenBucket:
    """容量 ``burst``、每秒补充 ``rate_per_s`` 个令牌。"""

    def __init__(self, rate_per_s: float, burst: float, now: float | None = None) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic() if now is None else now

    def _refill(self, now: float | None) -> float:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return self.tokens

    def allow(self, now: float | None = None, cost: float = 1.0) -> bool:
        if self._refill(now) >= cost:
            self.tokens -= cost
            return True
        return False

    def exhausted(self, now: float | None = None) -> bool:
        """桶是否已空（不消耗令牌）。"""
        return self._refill(now) < 1.0


class KeyedLimiter:
    """按键（来源 IP 等）各一个令牌桶；最多记住 ``max_keys`` 个键（最久未用的先忘），内存有界。"""

    def __init__(self, rate_per_s: float, burst: float, max_keys: int = 10000) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        return bucket

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self._bucket(key, now).allow(now)

    def blocked(self, key: str, now: float | None = None) -> bool:
        """该键的桶是否已空（不消耗令牌）：用于“失败太多次，先不再校验”。"""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        return bucket is not None and bucket.exhausted(now)
