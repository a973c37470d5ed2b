"""发布线程：有界队列 + socketio.RedisManager（只写）。

分析线程只把事件放进队列，从不等待 Redis；队列满时丢弃最旧的一批并计数，
因此 Redis 变慢或短暂不可用时分析不会停顿，延迟也不会无限增长。
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

from .events import Emission

log = logging.getLogger(__name__)


class Emitter(Protocol):
    def emit(self, event: str, data: object, namespace: str | None = None, room: object = None) -> object: ...


class EventPublisher(threading.Thread):
    def __init__(self, emitter: Emitter, maxsize: int = 256) -> None:
        super().__init__(name="publisher", daemon=True)
        self.emitter = emitter
        self._queue: queue.Queue[list[Emission] | None] = queue.Queue(maxsize=maxsize)
        self.dropped_batches = 0
        self.published = 0
        self.errors = 0

    def submit(self, batch: list[Emission]) -> None:
        while True:
            try:
                self._queue.put_nowait(batch)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped_batches += 1
                except queue.Empty:
                    pass

    def close(self, timeout: float = 2.0) -> None:
        """发完已排队的事件后结束线程（最多等 ``timeout`` 秒）。"""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self.join(timeout)

    def run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            for item in batch:
                try:
                    self.emitter.emit(item.event, item.data, namespace=item.namespace, room=item.room)
                    self.published += 1
                except Exception:  # noqa: BLE001 - 发布失败不能让线程退出
                    self.errors += 1
                    log.exception("publish %s failed", item.event)
