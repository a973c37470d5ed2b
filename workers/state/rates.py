"""事件速率计（拉流/分析线程记录，协调线程读取）。"""

from __future__ import annotations

import threading
from collections import deque


class RateMeter:
    """近 ``window_s`` 秒内的事件速率。``mark`` 与 ``rate`` 在不同线程调用（拉流/分析线程记录，协调线程读取）。"""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=256)
        self._lock = threading.Lock()

    def mark(self, t: float) -> None:
        with self._lock:
            self._times.append(t)

    def rate(self, now: float) -> float:
        with self._lock:
            times = list(self._times)
        recent = [t for t in times if now - t <= self.window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(1e-6, recent[-1] - recent[0])
