"""分析线程（每进程一个）：一帧变成指标的地方。

每一步：取到点的各流（``pacing.AnalysisPacer``：目标帧率，跟不上时所有流一起放慢）槽位里的最新帧
-> 逐帧人脸检测（多数帧只在上一帧人脸附近，``FaceTracker``）-> 主人脸的 68 个关键点（头部姿态用）
-> 到了情绪时间的各流主人脸合成一批做一次情绪推理
-> 并入各流状态（``StreamState.observe``）-> 到了身份比对时间的主人脸对齐成小图交给描述子服务（子进程）
-> 说话时把语音片段交给语音情绪服务 -> 到了推送时间的流交给 ``Outbox`` 发出事件。
"""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np

from ..analysis.emotion import face_crop
from ..analysis.face import FaceDetections, FaceDetector
from ..analysis.identity import IdentityTracker, face_chip, photo_chip
from ..analysis.landmarks import FaceLandmarker
from ..models.emotion import EmotionService
from ..models.identity import IdentityService
from ..models.speech import SpeechEmotionService
from ..output.outbox import Outbox
from ..state.vision import Observation
from ..stats.metrics import WorkerMetrics
from .consumer import StreamConsumer
from .frames import Frame
from .pacing import AnalysisPacer
from .registry import ConsumerRegistry

log = logging.getLogger(__name__)

Detected = tuple[StreamConsumer, Frame, FaceDetections]


class AnalysisLoop(threading.Thread):
    POLL_S = 0.05  # 没有被唤醒时也隔这么久看一次
    # 一步里检测至多花这么久（墙钟），其余到点的流留到紧接着的下一步：过载时一步要处理很多路，整步做完才发出事件
    # 的话，先取的帧要等整步（42 路、2 核时 p95 近 0.9 秒）。各流按上次分析的先后排队，留下的下一步最先处理
    MAX_DETECT_S = 0.1

    def __init__(
        self,
        registry: ConsumerRegistry,
        detector: FaceDetector,
        landmarker: FaceLandmarker,
        emotion: EmotionService,
        speech_emotion: SpeechEmotionService,
        identity: IdentityService,
        outbox: Outbox,
        wake: threading.Event,
        metrics: WorkerMetrics,
        pacer: AnalysisPacer,
    ) -> None:
        super().__init__(name="analysis", daemon=True)
        self.metrics = metrics
        self.registry = registry
        self.detector = detector
        self.landmarker = landmarker
        self.emotion = emotion
        self.speech_emotion = speech_emotion
        self.identity = identity
        self.outbox = outbox
        self.wake = wake  # 拉流线程放入一帧已到点的帧时唤醒（见 ``FrameSlot``）
        self.pacer = pacer
        self.stop_event = threading.Event()
        self._step_s = 0.0  # 上一步的墙钟时长

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.wake.wait(timeout=self.POLL_S)
            self.wake.clear()
            try:
                self.step()
            except Exception:  # noqa: BLE001 - 分析线程不能退出
                log.exception("analysis step failed")

    def step(self) -> None:
        started = time.thread_time()  # 本线程的 CPU 时间：等 GIL、等 CPU 的时间不算分析的开销
        wall = time.monotonic()
        consumers = self.registry.snapshot()
        batch, more = self._detect(consumers)
        if more:
            self.wake.set()  # 还有到点的流没轮到：不等唤醒，马上下一步
        if batch:
            self._analyse(batch)
        self.pacer.record(time.thread_time() - started, len(batch), len(consumers))
        self._step_s = time.monotonic() - wall

    def _analyse(self, batch: list[Detected]) -> None:
        grays = [cv2.cvtColor(frame.bgr, cv2.COLOR_BGR2GRAY) if faces.faces else None for _, frame, faces in batch]
        emotions = self._emotions(batch, grays)
        now = time.monotonic()
        for (consumer, frame, faces), gray, probs in zip(batch, grays, emotions):
            marks = self._landmarks(consumer, frame, faces, gray)
            obs = Observation(faces, frame.received_at, frame.wall_time, emotion=probs, gray=gray, landmarks=marks)
            consumer.state.observe(obs, now)
            self._check_identity(consumer, frame, faces, marks)
        now = time.monotonic()
        for consumer, frame, _ in batch:
            self._classify_speech(consumer, now)
            if consumer.state.publish_due(now):
                self.outbox.stream_update(
                    consumer.job, consumer.state, consumer.aggregate, consumer.missed_analyses, self.pacer, now
                )
                self.outbox.preview(consumer.job, consumer.state, frame.bgr, frame.wall_time, now)

    def _detect(self, consumers: list[StreamConsumer]) -> tuple[list[Detected], bool]:
        """到点的各流的最新帧（没有新帧的流跳过）及其人脸；第二项：是否因 ``MAX_DETECT_S`` 还有流没看。"""
        batch: list[Detected] = []
        deadline = time.monotonic() + self.MAX_DETECT_S
        # 放慢了节奏时（``pacer.throttled``），在下一步开始之前就会到点的流也在这一步分析：一步要很久，否则到点时刻与
        # 步子的相位决定哪路流每步都分析、哪路隔一步才分析一次（实测 3 路在 7 / 7 / 11 fps）。其余时候照点分析：
        # 提前会多分析、多占 CPU（只是 CPU 被别人占去而晚了的时候也提前，20 路时分析帧率升到 5.6–6 fps，越忙越多）
        now = time.monotonic() + (self._step_s if self.pacer.throttled else 0.0)
        for consumer in sorted(consumers, key=lambda c: -1.0 if c.last_analysed_at is None else c.last_analysed_at):
            if batch and time.monotonic() >= deadline:
                return batch, True
            frame = consumer.begin_analysis(self.pacer, now)
            if frame is None:
                continue
            started = time.perf_counter()
            try:
                faces = consumer.state.vision.face_tracker.detect(self.detector, frame.bgr, frame.received_at)
                batch.append((consumer, frame, faces))
            except Exception:  # noqa: BLE001 - 单路出错不影响其他流
                self.metrics.inference_errors.labels("face").inc()
                log.exception("face detection failed on %s", consumer.name)
            self.metrics.stage_seconds.labels("detect").observe(time.perf_counter() - started)
        return batch, False

    def _landmarks(
        self, consumer: StreamConsumer, frame: Frame, faces: FaceDetections, gray: np.ndarray | None
    ) -> np.ndarray | None:
        if not faces.faces or gray is None:
            return None
        started = time.perf_counter()
        try:
            return consumer.state.vision.landmarks.locate(self.landmarker, gray, faces.faces[0], frame.received_at)
        except Exception:  # noqa: BLE001 - 关键点出错时这一帧没有姿态，其余分析照常
            self.metrics.inference_errors.labels("landmarks").inc()
            log.exception("landmark prediction failed")
            return None
        finally:
            self.metrics.stage_seconds.labels("landmarks").observe(time.perf_counter() - started)

    def _check_identity(
        self, consumer: StreamConsumer, frame: Frame, faces: FaceDetections, marks: np.ndarray | None
    ) -> None:
        vision, who = consumer.state.vision, consumer.name
        tracker = vision.identity
        wanted = tracker.photo_waiting or (marks is not None and vision.identity_wanted())
        if not wanted or not self.identity.available(who):  # 需要时才排队（见 IdentityService 的轮次）
            return
        photo = tracker.take_photo()
        if photo is not None:
            self._submit_photo(who, tracker, photo)
            return
        if marks is None or not vision.identity_due():
            return
        t = frame.received_at
        chip = face_chip(cv2.cvtColor(frame.bgr, cv2.COLOR_BGR2RGB), faces.faces[0], marks)
        if not self.identity.submit(chip, lambda descriptor: tracker.deliver(descriptor, t), who):
            tracker.deliver(None, t)  # 队列满：这次不比，下一帧再看

    def _submit_photo(self, who: str, tracker: IdentityTracker, photo: bytes) -> None:
        """参考照片（每个会话一次，约 10 ms）：对齐成小图交给描述子服务；不可用时改为画面登记，队列满时下一帧再试。"""
        try:
            chip = photo_chip(photo, self.detector, self.landmarker)
        except Exception:  # noqa: BLE001 - 照片有问题不能影响这一路的分析
            log.exception("reference photo could not be prepared")
            chip = None
        if chip is None:
            tracker.photo_unusable()
        elif not self.identity.submit(chip, tracker.deliver_reference, who):
            tracker.offer_photo(photo)

    def _classify_speech(self, consumer: StreamConsumer, now: float) -> None:
        if not self.speech_emotion.ready:
            return
        audio = consumer.state.audio
        clip = audio.speech_clip_due(now)
        if clip is not None:
            self.speech_emotion.submit(clip, audio.set_speech_emotion)

    def _emotions(self, batch: list[Detected], grays: list[np.ndarray | None]) -> list[np.ndarray | None]:
        """到了情绪推理时间的各路流的主人脸裁剪后合成一批，一次推理。"""
        model = self.emotion.model
        if model is None:
            return [None] * len(batch)
        crops, owners = [], []
        interval = self.pacer.target_interval_s
        for i, ((consumer, frame, faces), gray) in enumerate(zip(batch, grays)):
            if faces.faces and gray is not None and consumer.state.vision.emotion_due(frame.received_at, interval):
                crops.append(face_crop(gray, faces.faces[0], model.input_size))
                owners.append(i)
        out: list[np.ndarray | None] = [None] * len(batch)
        started = time.perf_counter()
        try:
            probs = self.emotion.predict(crops)
        except Exception:  # noqa: BLE001 - 情绪推理出错时这一批没有情绪，检测与其余分析照常
            self.metrics.inference_errors.labels("emotion").inc()
            log.exception("emotion inference failed")
            probs = None
        if crops:
            self.metrics.stage_seconds.labels("emotion").observe(time.perf_counter() - started)
        if probs is not None:
            for i, p in zip(owners, probs):
                out[i] = p
        return out
