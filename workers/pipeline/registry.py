"""本进程当前处理的流（协调线程增删，分析线程与样本读取线程读取）。"""

from __future__ import annotations

import threading

from .consumer import StreamConsumer


class ConsumerRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, StreamConsumer] = {}

    def add(self, consumer: StreamConsumer) -> None:
        with self._lock:
            self._items[consumer.name] = consumer

    def pop(self, name: str) -> StreamConsumer | None:
        with self._lock:
            return self._items.pop(name, None)

    def snapshot(self) -> list[StreamConsumer]:
        with self._lock:
            return list(self._items.values())

    def names(self) -> list[str]:
        with self._lock:
            return list(self._items)
