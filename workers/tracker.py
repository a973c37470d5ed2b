"""每路流一个的分析状态：累积人脸统计、节流、延迟；不做 I/O。"""

from __future__ import annotations

from dataclasses import dataclass

from .analysis.face import FaceDetections
from .ingest import RateMeter


@dataclass(frozen=True)
class Observation:
    """一次分析的结果及其所分析帧的时间信息。"""

    faces: FaceDetections
    frame_received_at: float  # monotonic
    frame_wall_time: float  # unix 秒


class StreamTracker:
    """累积一路流的分析结果，并决定何时推送。

    只在刚完成一次分析后推送（推送的总是刚分析完的帧，延迟最小）。分析帧到达时刻有抖动，
    因此与上次推送相隔达到 ``publish_interval_s - analysis_interval_s / 2``（且不少于 250ms）即可推送，
    这样 5 fps 分析、400ms 节流时推送间隔稳定在约 400ms，而不会因几毫秒之差拖到 600ms。
    """

    # 两次分析间隔超过该值时不计入 multi_face_secs（断流期间不累积）
    MAX_GAP_S = 2.0
    MIN_PUBLISH_GAP_S = 0.25

    def __init__(self, publish_interval_s: float, analysis_interval_s: float) -> None:
        self.min_gap_s = max(self.MIN_PUBLISH_GAP_S, publish_interval_s - analysis_interval_s / 2)
        self.latest: Observation | None = None
        self.frames_analyzed = 0
        self.multi_face_secs = 0.0
        self.analysis_meter = RateMeter()
        self.last_latency_ms: float | None = None
        self._last_publish_at: float | None = None

    def observe(self, obs: Observation, now: float) -> None:
        previous = self.latest
        if previous is not None and previous.faces.count > 1:
            gap = obs.frame_received_at - previous.frame_received_at
            if 0 < gap <= self.MAX_GAP_S:
                self.multi_face_secs += gap
        self.latest = obs
        self.frames_analyzed += 1
        self.analysis_meter.mark(now)

    def publish_due(self, now: float) -> bool:
        """刚分析完一帧时调用：距上次推送是否已满节流间隔。"""
        return self._last_publish_at is None or now - self._last_publish_at >= self.min_gap_s

    def mark_published(self, now: float) -> float:
        """记录一次推送，返回本次端内延迟（帧解码完成 -> 推送，毫秒）。"""
        assert self.latest is not None
        self._last_publish_at = now
        self.last_latency_ms = round((now - self.latest.frame_received_at) * 1000.0, 1)
        return self.last_latency_ms
