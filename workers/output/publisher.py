"""发布线程：有界队列 + ``BatchEmitter``（一次分析的事件合成一条 Redis 消息）。

分析线程只把事件放进队列，从不等待 Redis；队列满时丢弃最旧的一批，排队超过 ``MAX_AGE_S`` 的一批不再发出（都计数），
因此 Redis 变慢、进程忙不过来时分析不会停顿，延迟也不会越积越多。
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Protocol

import redis

from shared import fanout
from shared.keys import REPLAY_WINDOW_S, RedisKeys

from ..stats.metrics import WorkerMetrics
from .routing import Emission

log = logging.getLogger(__name__)


class Emitter(Protocol):
    def emit_batch(self, emissions: list[fanout.Emission]) -> None: ...


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


# 排队超过这么久的一批事件不再发出（过时）：分析来不及时延迟有上限，而不是越积越多
MAX_AGE_S = 1.0
_Entry = tuple[float, list[Emission], "tuple[str, dict] | None"]


class EventPublisher(threading.Thread):
    def __init__(
        self,
        emitter: Emitter,
        maxsize: int = 256,
        replay: ReplayBuffer | None = None,
        metrics: WorkerMetrics | None = None,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        super().__init__(name="publisher", daemon=True)
        self.emitter = emitter
        self.metrics = metrics
        self.replay = replay
        self.max_age_s = max_age_s
        self._queue: queue.Queue[_Entry | None] = queue.Queue(maxsize=maxsize)
        self.dropped_batches = 0
        self.published = 0
        self.errors = 0

    def submit(self, batch: list[Emission], replay: tuple[str, dict] | None = None) -> None:
        """``replay``：(会话 ID, monitor.update 负载)，发出之前写入回放缓冲。"""
        while True:
            try:
                self._queue.put_nowait((time.monotonic(), batch, replay))
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self._dropped()
                except queue.Empty:
                    pass

    def _dropped(self) -> None:
        self.dropped_batches += 1
        if self.metrics is not None:
            self.metrics.publish_dropped.inc()

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
            queued_at, batch, replay = entry
            if time.monotonic() - queued_at > self.max_age_s:
                self._dropped()  # 已经过时：发出去只会让教师看到几秒前的状态，并拖慢后面的
                continue
            started = time.perf_counter()
            # 先写回放缓冲、再发出：网关在发出之前就已 hold 住的新连接会排队收到它，之后才 hold 的连接读回放时必能读到它，
            # 所以新连接不漏任何一条（见 gateway/realtime/fanout.py）
            if replay is not None and self.replay is not None:
                try:
                    self.replay.append(*replay)
                except redis.RedisError as exc:
                    self.errors += 1
                    log.warning("replay buffer write failed: %s", exc)
            try:
                self.emitter.emit_batch([(e.event, e.data, e.namespace, e.room) for e in batch])
                self.published += len(batch)
            except Exception:  # noqa: BLE001 - 发布失败不能让线程退出
                self.errors += 1
                log.exception("publish of %d events failed", len(batch))
            if self.metrics is not None:
                self.metrics.stage_seconds.labels("publish").observe(time.perf_counter() - started)
                self.metrics.published.inc()
