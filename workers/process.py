"""一个工作进程：协调循环（主线程）+ 每流一个拉流线程 + 一个分析线程 + 一个发布线程。

``python -m workers.process`` 单独启动一个工作进程（通常由监督进程 ``python -m workers`` 启动）。
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import socket
import threading
import time

import cv2
import numpy as np
import psutil
import redis
import socketio

from shared import events as ev
from shared.api import StreamJob, WorkerStatus
from shared.keys import RedisKeys
from shared.messages import PpgRoi, SignalClose
from shared.settings import Settings

from .analysis.emotion import face_crop
from .analysis.face import FaceDetections, FaceDetector
from .client_ppg import ClientPpgReader
from .consumer import StreamConsumer
from .coordinator import Coordinator, PeerLoad, plan_claims, plan_release
from .emotion_service import EmotionService
from .events import Emission, build_emotion_event, build_heart_rate_event, build_monitor_update, route
from .ingest import Frame
from .publisher import EventPublisher, ReplayBuffer
from .report_sink import SessionSink
from .speech_emotion_service import SpeechEmotionService
from .tracker import Observation

log = logging.getLogger(__name__)


class ConsumerRegistry:
    """主线程增删、分析线程读取的消费者集合。"""

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


class AnalysisLoop(threading.Thread):
    """取各流的最新待分析帧：逐帧人脸检测，所有流的主人脸合成一批做一次情绪推理，
    更新各流状态，按节流间隔组装并提交事件。"""

    def __init__(
        self,
        registry: ConsumerRegistry,
        detector: FaceDetector,
        emotion: EmotionService,
        speech_emotion: SpeechEmotionService,
        publisher: EventPublisher,
        wake: threading.Event,
    ) -> None:
        super().__init__(name="analysis", daemon=True)
        self.registry = registry
        self.detector = detector
        self.emotion = emotion
        self.speech_emotion = speech_emotion
        self.publisher = publisher
        self.wake = wake
        self.stop_event = threading.Event()
        self.cpu_util: float | None = None

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.wake.wait(timeout=0.05)
            self.wake.clear()
            try:
                self.step()
            except Exception:  # noqa: BLE001 - 分析线程不能退出
                log.exception("analysis step failed")

    def step(self) -> None:
        batch: list[tuple[StreamConsumer, Frame, FaceDetections]] = []
        for consumer in self.registry.snapshot():
            frame = consumer.slot.take()
            if frame is None:
                continue
            try:
                batch.append((consumer, frame, self.detector.detect(frame.image)))
            except Exception:  # noqa: BLE001 - 单路出错不影响其他流
                log.exception("face detection failed on %s", consumer.name)
        if not batch:
            return
        grays = [cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY) if faces.faces else None for _, frame, faces in batch]
        emotions = self._emotions(batch, grays)
        now = time.monotonic()
        for (consumer, frame, faces), gray, probs in zip(batch, grays, emotions):
            obs = Observation(faces, frame.received_at, frame.wall_time, emotion=probs, gray=gray)
            consumer.tracker.observe(obs, now)
        now = time.monotonic()
        for consumer, _, _ in batch:
            self._classify_speech(consumer, now)
            if consumer.tracker.publish_due(now):
                self._publish(consumer, now)

    def _classify_speech(self, consumer: StreamConsumer, now: float) -> None:
        if not self.speech_emotion.ready:
            return
        clip = consumer.tracker.speech_clip_due(now)
        if clip is not None:
            self.speech_emotion.submit(clip, consumer.tracker.set_speech_emotion)

    def _emotions(
        self, batch: list[tuple[StreamConsumer, Frame, FaceDetections]], grays: list[np.ndarray | None]
    ) -> list[np.ndarray | None]:
        """每路流的主人脸裁剪后合成一批，一次推理。"""
        model = self.emotion.model
        if model is None:
            return [None] * len(batch)
        crops, owners = [], []
        for i, ((_, _, faces), gray) in enumerate(zip(batch, grays)):
            if faces.faces and gray is not None:
                crops.append(face_crop(gray, faces.faces[0], model.input_size))
                owners.append(i)
        out: list[np.ndarray | None] = [None] * len(batch)
        probs = self.emotion.predict(crops)
        if probs is not None:
            for i, p in zip(owners, probs):
                out[i] = p
        return out

    def _publish(self, consumer: StreamConsumer, now: float) -> None:
        tracker = consumer.tracker
        latency_ms = tracker.mark_published(now)
        job = consumer.job
        ppg = tracker.heart_rate(now)
        update = build_monitor_update(
            job.session_id,
            tracker,
            ppg,
            now=now,
            now_wall=time.time(),
            latency_ms=latency_ms,
            cpu_util=self.cpu_util,
            dropped_frames=consumer.slot.dropped,
            emotion_ready=self.emotion.ready,
            audio_emotion_ready=self.speech_emotion.ready,
        )
        emotion = build_emotion_event(job.session_id, job.stream_name, tracker)
        heart = build_heart_rate_event(job.session_id, job.stream_name, tracker, ppg) if tracker.heart_rate_due(now) else None
        batch = route(job.stream_name, update, emotion, heart)
        roi = tracker.roi_due(now) if job.session_id else None
        if roi is not None:
            # 学生端据此在编码前的画面上采样皮肤颜色（ppg.samples）
            message = PpgRoi(session_id=job.session_id, seq=roi[0], roi=roi[1]).model_dump(mode="json")
            batch.append(Emission(ev.PPG_ROI, message, ev.NS_DEFAULT, ev.session_room(job.session_id)))
        update_data = next(e.data for e in batch if e.event == ev.MONITOR_UPDATE)  # 已序列化：回放缓冲直接复用
        self.publisher.submit(batch, replay=(job.session_id, update_data))
        consumer.aggregate.add_update(update, emotion.result.dominant_emotion, now)
        consumer.aggregate.add_episodes(tracker.anomalies.pop_finished())


class WorkerProcess:
    # 两次交出流之间的最短间隔：等对方认领、负载上报更新后再决定下一条
    REBALANCE_COOLDOWN_S = 2.0

    def __init__(self, settings: Settings, worker_id: str | None = None, parent_pid: int | None = None) -> None:
        self.settings = settings
        self.parent_pid = parent_pid
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.keys = RedisKeys(settings.key_prefix)
        redis_options = {
            "socket_timeout": settings.redis_timeout_s,
            "socket_connect_timeout": settings.redis_timeout_s,
        }
        self.redis = redis.Redis.from_url(settings.redis_url, **redis_options)
        self.coordinator = Coordinator(self.redis, self.keys, self.worker_id, settings.lease_ttl_ms)
        self.sink = SessionSink(self.redis, self.keys)
        self._last_flush = time.monotonic()
        self._last_release = 0.0
        emitter = socketio.RedisManager(
            settings.redis_url, channel=self.keys.socketio_channel, write_only=True, redis_options=redis_options
        )
        self.publisher = EventPublisher(
            emitter, maxsize=settings.publish_queue_size, replay=ReplayBuffer(self.redis, self.keys)
        )
        self.registry = ConsumerRegistry()
        self.wake = threading.Event()
        self.emotion = EmotionService(settings.emotion_backend, settings.deepface_home)
        self.speech_emotion = SpeechEmotionService(settings.audio_emotion_model)
        self.analysis = AnalysisLoop(
            self.registry,
            FaceDetector(settings.face_detect_width, settings.face_min_score),
            self.emotion,
            self.speech_emotion,
            self.publisher,
            self.wake,
        )
        self.stop_event = threading.Event()
        self.client_ppg = ClientPpgReader(self.redis, self.keys, self.registry.snapshot, self.stop_event)
        self._process = psutil.Process()
        self._last_renew_ok = time.monotonic()
        self._rng = random.Random()

    # ---- 生命周期 ----
    def run(self) -> None:
        log.info("worker %s starting (capacity %d)", self.worker_id, self.settings.worker_capacity)
        self.emotion.start()
        self.speech_emotion.start()
        self.publisher.start()
        self.analysis.start()
        self.client_ppg.start()
        psutil.cpu_percent(None)
        self._process.cpu_percent(None)
        interval = self.settings.claim_interval_ms / 1000.0
        failures = 0
        while not self.stop_event.is_set():
            started = time.monotonic()
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                log.warning("worker %s: supervisor %d is gone, exiting", self.worker_id, self.parent_pid)
                break
            try:
                self.tick()
                failures = 0
            except redis.RedisError as exc:
                failures += 1
                log.warning("worker %s: redis error (%s), retry %d", self.worker_id, exc, failures)
                self._fence()
            except Exception:  # noqa: BLE001 - 协调循环不能因单次意外退出（否则持有的流都要等租约过期）
                log.exception("worker %s: coordinator tick failed", self.worker_id)
            delay = interval if failures == 0 else min(5.0, interval * 2**failures)
            self.stop_event.wait(max(0.0, delay - (time.monotonic() - started)))
        self.shutdown()

    def shutdown(self) -> None:
        """停止全部流并释放租约，使其他进程能立即接管。"""
        names = self.registry.names()
        for name in names:
            self._drop(name, release=False)
        try:
            for name in names:
                self.coordinator.release(name)
            self.coordinator.leave()
        except redis.RedisError as exc:
            log.warning("worker %s: could not release leases on shutdown: %s", self.worker_id, exc)
        self.analysis.stop_event.set()
        self.analysis.join(2.0)
        self.speech_emotion.stop()
        self.publisher.close()
        log.info("worker %s stopped", self.worker_id)

    # ---- 协调周期 ----
    def tick(self) -> None:
        self.analysis.cpu_util = round(psutil.cpu_percent(None) / 100.0, 3)
        now_ms = self.coordinator.server_time_ms()
        desired = self.coordinator.desired()
        for consumer in self.registry.snapshot():
            job = desired.get(consumer.name)
            if job is None or job.rtsp_url != consumer.job.rtsp_url:
                log.info("worker %s: stream %s no longer assigned as is, stopping", self.worker_id, consumer.name)
                self._drop(consumer.name, release=True)
        lost = self.coordinator.renew(self.registry.names())
        self._last_renew_ok = time.monotonic()
        for name in lost:
            log.warning("worker %s: lease on %s lost, stopping it", self.worker_id, name)
            self._drop(name, release=False)
        peers = self.coordinator.heartbeat(self._worker_status(now_ms), now_ms)
        before = self.registry.names()
        self._rebalance(desired, peers)
        self._claim(desired, peers)
        if self.registry.names() != before:
            self.coordinator.update_status(self._worker_status(now_ms))
        self.coordinator.publish_status([c.status(self.worker_id) for c in self.registry.snapshot()])
        if time.monotonic() - self._last_flush >= self.settings.aggregate_flush_s:
            self._last_flush = time.monotonic()
            for consumer in self.registry.snapshot():
                self._flush(consumer)

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
            # 推流中断：通知学生端（会话房间），学生端据此重新发起推流
            close = SignalClose(session_id=session_id, reason=reason).model_dump()
            self.publisher.submit([Emission(ev.SIGNAL_CLOSE, close, ev.NS_DEFAULT, ev.session_room(session_id))])

    def _rebalance(self, desired: dict[str, StreamJob], peers: list[WorkerStatus]) -> None:
        """负载明显高于平均且有进程空闲时，交出最近认领的一条流（每 ``REBALANCE_COOLDOWN_S`` 秒至多一条）。"""
        if time.monotonic() - self._last_release < self.REBALANCE_COOLDOWN_S:
            return
        mine = self.registry.names()
        loads = [PeerLoad(len(p.streams), p.capacity) for p in peers]
        if mine and plan_release(len(mine), len(desired), loads):
            self._last_release = time.monotonic()
            log.info("worker %s: handing %s over to a less loaded worker", self.worker_id, mine[-1])
            self._drop(mine[-1], release=True)

    def _claim(self, desired: dict[str, StreamJob], peers: list[WorkerStatus]) -> None:
        owners = self.coordinator.owners(list(desired))
        unowned = [name for name, owner in owners.items() if owner is None]
        mine = len(self.registry.names())
        budget = plan_claims(
            len(unowned),
            mine,
            self.settings.worker_capacity,
            len(desired),
            [PeerLoad(len(p.streams), p.capacity) for p in peers],
        )
        self._rng.shuffle(unowned)
        for name in unowned:
            if budget <= 0:
                break
            if self.coordinator.try_claim(name):
                budget -= 1
                consumer = StreamConsumer(desired[name], self.settings, self.wake)
                self.registry.add(consumer)
                consumer.start()
                log.info("worker %s: claimed %s", self.worker_id, name)

    def _drop(self, name: str, release: bool) -> None:
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
            self.coordinator.update_status(self._worker_status(self.coordinator.server_time_ms()))
            self.coordinator.release(name)

    def _fence(self) -> None:
        """Redis 不可达超过租约期的 80% 时停止全部流：此后租约可能已被他人接管。"""
        if time.monotonic() - self._last_renew_ok > 0.8 * self.settings.lease_ttl_ms / 1000.0:
            for name in self.registry.names():
                log.warning("worker %s: cannot renew lease on %s, stopping it", self.worker_id, name)
                self._drop(name, release=False)

    def _worker_status(self, now_ms: int) -> WorkerStatus:
        return WorkerStatus(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            capacity=self.settings.worker_capacity,
            streams=self.registry.names(),
            alive=True,
            last_seen_ms=now_ms,
            cpu_util=round(self._process.cpu_percent(None) / 100.0, 3),
        )


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s",
    )


def stop_on_signals(stop_event: threading.Event, label: str) -> None:
    """SIGTERM / SIGINT 时置位 ``stop_event``，由主循环负责有序退出。"""

    def _stop(signum: int, _frame: object) -> None:
        log.info("%s: signal %d, stopping", label, signum)
        stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="启动单个推理工作进程")
    parser.add_argument("--worker-id", default=None, help="工作进程 ID（默认 主机名-PID）")
    parser.add_argument("--parent-pid", type=int, default=None, help="监督进程 PID：它消失时本进程随之退出")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    cv2.setNumThreads(1)  # 每路流的图像很小：OpenCV 自己的线程池只会和拉流/分析线程争抢 CPU
    worker = WorkerProcess(settings, args.worker_id, parent_pid=args.parent_pid)
    stop_on_signals(worker.stop_event, f"worker {worker.worker_id}")
    worker.run()


if __name__ == "__main__":
    main()
