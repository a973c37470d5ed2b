"""协调周期（工作进程主线程，每 ``CLAIM_INTERVAL_MS``）：本进程该处理哪些流。

一个周期：停掉已不再期望（或地址已变）的流 -> 原子续约自己的租约（失去的立即停止）-> 写心跳、读其他进程负载
-> 负载过高时交出一条 -> 按均衡规则认领无主流 -> 上报每路流的状态 -> 定期把会话汇总增量写入 Redis。
Redis 不可达超过租约期的 80% 时停止全部流（此后租约可能已被他人接管），保证任一时刻一个流最多一个所属进程。
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time

import psutil
import redis

from shared.api import StreamJob, WorkerStatus
from shared.settings import Settings

from ..output.outbox import Outbox
from ..output.report_sink import SessionSink
from ..pipeline.consumer import StreamConsumer
from ..pipeline.pacing import AnalysisPacer
from ..pipeline.reference_photo import ReferencePhotos
from ..pipeline.registry import ConsumerRegistry
from ..stats.gpu import GpuProbe
from ..stats.metrics import WorkerMetrics
from ..stats.sync import StreamCounters
from .balance import PeerLoad, plan_claims, plan_release
from .leases import Leases

log = logging.getLogger(__name__)


class StreamAssigner:
    # 两次交出流之间的最短间隔：等对方认领、负载上报更新后再决定下一条
    REBALANCE_COOLDOWN_S = 2.0

    def __init__(
        self,
        leases: Leases,
        registry: ConsumerRegistry,
        settings: Settings,
        sink: SessionSink,
        outbox: Outbox,
        wake: threading.Event,
        metrics: WorkerMetrics,
        gpu: GpuProbe,
        pacer: AnalysisPacer,
        photos: ReferencePhotos,
    ) -> None:
        self.leases = leases
        self.photos = photos
        self.metrics = metrics
        self.gpu = gpu
        self.pacer = pacer
        self.counters = StreamCounters(metrics)
        self._cpu_ratio = 0.0
        self.registry = registry
        self.settings = settings
        self.sink = sink
        self.outbox = outbox
        self.wake = wake
        self.worker_id = leases.worker_id
        self._process = psutil.Process()
        self._last_flush = time.monotonic()
        self._last_release = 0.0
        self._last_renew_ok = time.monotonic()
        self._rng = random.Random()
        psutil.cpu_percent(None)  # 第一次调用只是开始计量
        self._process.cpu_percent(None)

    def tick(self) -> None:
        self.outbox.cpu_util = round(psutil.cpu_percent(None) / 100.0, 3)
        self.outbox.gpu_util = self.gpu.utilization()
        self._cpu_ratio = round(self._process.cpu_percent(None) / 100.0, 3)
        self.metrics.cpu_ratio.set(self._cpu_ratio)
        self.metrics.analysis_fps.set(round(self.pacer.fps, 2))
        self.metrics.rss_bytes.set(self._process.memory_info().rss)
        now_ms = self.leases.server_time_ms()
        desired = self.leases.desired()
        for consumer in self.registry.snapshot():
            job = desired.get(consumer.name)
            if job is None or job.rtsp_url != consumer.job.rtsp_url:
                log.info("worker %s: stream %s no longer assigned as is, stopping", self.worker_id, consumer.name)
                self.drop(consumer.name, release=True)
        lost = self.leases.renew(self.registry.names())
        self._last_renew_ok = time.monotonic()
        for name in lost:
            log.warning("worker %s: lease on %s lost, stopping it", self.worker_id, name)
            self.drop(name, release=False)
            self.metrics.assignments.labels("lost").inc()
        peers = self.leases.heartbeat(self.worker_status(now_ms), now_ms)
        before = self.registry.names()
        self._rebalance(desired, peers)
        self._claim(desired, peers)
        if self.registry.names() != before:
            self.leases.update_status(self.worker_status(now_ms))
        consumers = self.registry.snapshot()
        self.leases.publish_status([c.status(self.worker_id, self.pacer) for c in consumers])
        self.counters.update(consumers)
        self.metrics.active_streams.set(len(consumers))
        if time.monotonic() - self._last_flush >= self.settings.aggregate_flush_s:
            self._last_flush = time.monotonic()
            for consumer in self.registry.snapshot():
                self._flush(consumer)

    def fence(self) -> None:
        """Redis 出错后调用：不可达超过租约期的 80% 时停止全部流（此后租约可能已被他人接管）。"""
        if time.monotonic() - self._last_renew_ok > 0.8 * self.settings.lease_ttl_ms / 1000.0:
            for name in self.registry.names():
                log.warning("worker %s: cannot renew lease on %s, stopping it", self.worker_id, name)
                self.drop(name, release=False)

    def release_all(self) -> None:
        """进程退出时：停止全部流并释放租约，使其他进程能立即接管。"""
        names = self.registry.names()
        for name in names:
            self.drop(name, release=False)
        try:
            for name in names:
                self.leases.release(name)
            self.leases.leave()
        except redis.RedisError as exc:
            log.warning("worker %s: could not release leases on shutdown: %s", self.worker_id, exc)

    def drop(self, name: str, release: bool) -> None:
        self.counters.update(self.registry.snapshot())  # 停止前并入这路流最后的计数
        consumer = self.registry.pop(name)
        if consumer is not None:
            consumer.stop()
            consumer.close_episodes(time.monotonic())
            try:
                self._flush(consumer)  # 先写完汇总再释放租约：end_session 等到释放后读到的是完整汇总
            except redis.RedisError as exc:
                log.warning("worker %s: final aggregate of %s not written: %s", self.worker_id, name, exc)
        if release:
            # 先刷新自身状态再释放：等待释放的 rtsp/stop 返回后，rtsp/status 里已没有这条流
            self.leases.update_status(self.worker_status(self.leases.server_time_ms()))
            self.leases.release(name)
            self.metrics.assignments.labels("released").inc()

    def _flush(self, consumer: StreamConsumer) -> None:
        """把一路流的会话汇总增量与媒体状态写入 Redis；失败时增量放回，下次再写。"""
        deltas = consumer.take_deltas()
        state = consumer.session_state(time.monotonic())
        reason = "frames_arriving" if state == "STREAMING" else f"no_frames_for_{self.settings.degraded_after_s:g}s"
        session_id = consumer.job.session_id
        try:
            changed = self.sink.flush(session_id, deltas, state, reason)
        except redis.RedisError:
            consumer.aggregate.restore(deltas)
            raise
        if changed and state == "DEGRADED":
            self.outbox.signal_close(session_id, reason)  # 推流中断：学生端据此重新发起推流

    def _rebalance(self, desired: dict[str, StreamJob], peers: list[WorkerStatus]) -> None:
        """负载明显高于平均且有进程空闲时，交出最近认领的一条流（每 ``REBALANCE_COOLDOWN_S`` 秒至多一条）。"""
        if time.monotonic() - self._last_release < self.REBALANCE_COOLDOWN_S:
            return
        mine = self.registry.names()
        loads = [PeerLoad(len(p.streams), p.capacity) for p in peers]
        if mine and plan_release(len(mine), len(desired), loads):
            self._last_release = time.monotonic()
            log.info("worker %s: handing %s over to a less loaded worker", self.worker_id, mine[-1])
            self.drop(mine[-1], release=True)

    def _claim(self, desired: dict[str, StreamJob], peers: list[WorkerStatus]) -> None:
        owners = self.leases.owners(list(desired))
        unowned = [name for name, owner in owners.items() if owner is None]
        loads = [PeerLoad(len(p.streams), p.capacity, p.headroom) for p in peers]
        budget = plan_claims(
            len(unowned), len(self.registry.names()), self.settings.worker_capacity, len(desired), loads,
            self.pacer.fits_one_more(),
        )
        self._rng.shuffle(unowned)
        for name in unowned:
            if budget <= 0:
                break
            how = self.leases.try_claim(name)
            if how is not None:
                budget -= 1
                job = desired[name]
                consumer = StreamConsumer(job, self.settings, self.wake, self.metrics.stage_seconds.labels("decode"))
                photo = self.photos.get(job.session_id)
                if photo is not None:  # 分析线程看到这路流之前
                    consumer.state.vision.identity.offer_photo(photo)
                self.registry.add(consumer)
                consumer.start()
                self.metrics.assignments.labels(how).inc()
                log.info("worker %s: claimed %s", self.worker_id, name)

    def worker_status(self, now_ms: int) -> WorkerStatus:
        return WorkerStatus(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            capacity=self.settings.worker_capacity,
            streams=self.registry.names(),
            alive=True,
            last_seen_ms=now_ms,
            cpu_util=self._cpu_ratio,
            headroom=self.pacer.headroom,
            degraded=self.pacer.degraded,
            analysis_fps=round(self.pacer.fps, 2),
        )
