"""发布线程：有界队列 + socketio.RedisManager（只写）。

分析线程只把事件放进队列，从不等待 Redis；队列满时丢弃最旧的一批并计数，
因此 Redis 变慢或短暂不可用时分析不会停顿，延迟也不会无限增长。
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Protocol

import redis

from shared.keys import REPLAY_WINDOW_S, RedisKeys

from ..stats.metrics import WorkerMetrics
from .routing import Emission

log = logging.getLogger(__name__)


class Emitter(Protocol):
    def emit(self, event: str, data: object, namespace: str | None = None, room: object = None) -> object: ...


class ReplayBuffer:
    """每会话最近 ``REPLAY_WINDOW_S`` 秒的 monitor.update（Redis 有序集合，分值为毫秒时间戳）。"""

    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    def append(self, session_id: str, update: dict) -> None:
        now_ms = int(time.time() * 1000)
        key = self.keys.replay(session_id)
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(key, {json.dumps(update, ensure_ascii=False, separators=(",", ":")): now_ms})
        pipe.zremrangebyscore(key, "-inf", now_ms - int(REPLAY_WINDOW_S * 1000))
        pipe.pexpire(key, int(REPLAY_WINDOW_S * 3000))
        pipe.execute()


class EventPublisher(threading.Thread):
    def __init__(
        self, emitter: Emitter, maxsize: int = 256, replay: ReplayBuffer | None = None, metrics: WorkerMetrics | None = None
    ) -> None:
        super().__init__(name="publisher", daemon=True)
        self.emitter = emitter
        self.metrics = metrics
        self.replay = replay
        self._queue: queue.Queue[tuple[list[Emission], tuple[str, dict] | None] | None] = queue.Queue(maxsize=maxsize)
        self.dropped_batches = 0
        self.published = 0
        self.errors = 0

    def submit(self, batch: list[Emission], replay: tuple[str, dict] | None = None) -> None:
        """``replay``：(会话 ID, monitor.update 负载)，发出后写入回放缓冲。"""
        while True:
            try:
                self._queue.put_nowait((batch, replay))
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped_batches += 1
                    if self.metrics is not None:
                        self.metrics.publish_dropped.inc()
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
            entry = self._queue.get()
            if entry is None:
                return
            batch, replay = entry
            started = time.perf_counter()
            for item in batch:
                try:
                    self.emitter.emit(item.event, item.data, namespace=item.namespace, room=item.room)
                    self.published += 1
                except Exception:  # noqa: BLE001 - 发布失败不能让线程退出
                    self.errors += 1
                    log.exception("publish %s failed", item.event)
            if replay is not None and self.replay is not None:
                try:
                    self.replay.append(*replay)
                except redis.RedisError as exc:
                    self.errors += 1
                    log.warning("replay buffer write failed: %s", exc)
            if self.metrics is not None:
                self.metrics.stage_seconds.labels("publish").observe(time.perf_counter() - started)
                self.metrics.published.inc()
