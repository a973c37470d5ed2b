"""一次分析之后的事件出口：用该流的快照组装事件、按 ``routing`` 定好去向、交给发布线程，并把这次更新计入会话汇总。

分析线程调用 ``stream_update``，协调线程调用 ``signal_close``；两者都只往发布线程的队列里放，从不等待 Redis。
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import numpy as np

from shared import events as ev
from shared.api import StreamJob
from shared.messages import MonitorPreview, iso_utc

from ..analysis.preview import PreviewMode, preview_jpeg
from ..pipeline.pacing import AnalysisPacer
from ..state.stream_state import StreamState
from ..stats.metrics import WorkerMetrics
from . import routing
from .aggregate import SessionAggregator
from .events import build_emotion_event, build_heart_rate_event, build_monitor_update
from .publisher import EventPublisher


class Outbox:
    def __init__(
        self,
        publisher: EventPublisher,
        emotion_ready: Callable[[], bool],
        audio_emotion_ready: Callable[[], bool],
        metrics: WorkerMetrics,
        preview_mode: str = "mosaic",
        worker_id: str | None = None,
    ) -> None:
        self.publisher = publisher
        self.worker_id = worker_id
        self.preview_mode: PreviewMode | None = None if preview_mode == "off" else preview_mode  # type: ignore[assignment]
        self.metrics = metrics
        self.emotion_ready = emotion_ready
        self.audio_emotion_ready = audio_emotion_ready
        self.cpu_util: float | None = None  # 协调线程每个周期更新
        self.gpu_util: float | None = None  # 同上；没有 NVML 时为 None

    def stream_update(
        self,
        job: StreamJob,
        state: StreamState,
        aggregate: SessionAggregator,
        dropped_frames: int,
        pacer: AnalysisPacer,
        now: float,
    ) -> None:
        """该流刚分析完一帧且到了推送时间：发 monitor.update、兼容旧前端的事件与（需要时）``ppg.roi``，并计入会话汇总。"""
        latency_ms = state.mark_published(now)
        started = time.perf_counter()
        ppg = state.pulse.heart_rate(now)
        self.metrics.stage_seconds.labels("rppg").observe(time.perf_counter() - started)
        self.metrics.frame_to_event.observe(latency_ms / 1000.0)
        snap = state.snapshot(now, ppg)
        update = build_monitor_update(
            job,
            snap,
            now_wall=time.time(),
            latency_ms=latency_ms,
            cpu_util=self.cpu_util,
            gpu_util=self.gpu_util,
            dropped_frames=dropped_frames,
            pacer=pacer,
            emotion_ready=self.emotion_ready(),
            audio_emotion_ready=self.audio_emotion_ready(),
            worker=self.worker_id,
        )
        emotion = build_emotion_event(job.session_id, job.stream_name, snap)
        heart = build_heart_rate_event(job.session_id, job.stream_name, snap) if state.throttle.heart_rate_due(now) else None
        batch = routing.route(job.stream_name, update, emotion, heart, job.exam_id)
        roi = state.roi_due(now) if job.session_id else None
        if roi is not None:
            batch.append(routing.ppg_roi(job.session_id, *roi))
        update_data = next(e.data for e in batch if e.event == ev.MONITOR_UPDATE)  # 已序列化：回放缓冲直接复用
        self.publisher.submit(batch, replay=(job.session_id, update_data))
        aggregate.add_update(update, snap.emotion.dominant if snap.emotion else None, now)
        aggregate.add_episodes(state.anomalies.pop_finished())

    def preview(self, job: StreamJob, state: StreamState, bgr: np.ndarray, frame_wall_time: float, now: float) -> None:
        """到了时间就发一张预览小图（``monitor.preview``，只发往 /monitor；不进回放缓冲）。"""
        mode = self.preview_mode
        if mode is None or not job.session_id or not state.throttle.preview_due(now):
            return
        jpeg = preview_jpeg(bgr, mode)
        message = MonitorPreview(
            session_id=job.session_id,
            stream_name=job.stream_name,
            exam_id=job.exam_id,
            student_id=job.student_id,
            timestamp=iso_utc(frame_wall_time),
            mode=mode,
            image="data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"),
        )
        self.publisher.submit([routing.preview(job.stream_name, message)])

    def signal_close(self, session_id: str, reason: str) -> None:
        self.publisher.submit([routing.signal_close(session_id, reason)])
