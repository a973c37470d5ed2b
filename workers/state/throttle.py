"""推送节流：每路流的 monitor.update、心率事件与预览小图多久发一次，以及本次推送的端内延迟。"""

from __future__ import annotations


class PublishThrottle:
    """只在刚完成一次分析后推送（推送的总是刚分析完的帧，延迟最小）。分析帧到达时刻有抖动，
    因此与上次推送相隔达到 ``publish_interval_s - analysis_interval_s / 2``（且不少于 250ms）即可推送，
    这样 5 fps 分析、400ms 节流时推送间隔稳定在约 400ms，而不会因几毫秒之差拖到 600ms。
    """

    MIN_PUBLISH_GAP_S = 0.25
    HEART_RATE_EVENT_INTERVAL_S = 1.0

    def __init__(self, publish_interval_s: float, analysis_interval_s: float, preview_interval_s: float = 15.0) -> None:
        self.min_gap_s = max(self.MIN_PUBLISH_GAP_S, publish_interval_s - analysis_interval_s / 2)
        self.preview_interval_s = preview_interval_s
        self.last_latency_ms: float | None = None
        self._last_publish_at: float | None = None
        self._last_heart_rate_at: float | None = None
        self._last_preview_at: float | None = None

    def preview_due(self, now: float) -> bool:
        """预览小图每 ``preview_interval_s`` 一张（第一次在第一次推送时）。"""
        if self._last_preview_at is not None and now - self._last_preview_at < self.preview_interval_s:
            return False
        self._last_preview_at = now
        return True

    def publish_due(self, now: float) -> bool:
        """刚分析完一帧时调用：距上次推送是否已满节流间隔。"""
        return self._last_publish_at is None or now - self._last_publish_at >= self.min_gap_s

    def heart_rate_due(self, now: float) -> bool:
        """心率事件每秒至多一次（随某次 monitor.update 一起发出）。"""
        if self._last_heart_rate_at is not None and now - self._last_heart_rate_at < self.HEART_RATE_EVENT_INTERVAL_S:
            return False
        self._last_heart_rate_at = now
        return True

    def mark_published(self, now: float, frame_received_at: float) -> float:
        """记录一次推送，返回本次端内延迟（帧解码完成 -> 推送，毫秒）。"""
        self._last_publish_at = now
        self.last_latency_ms = round((now - frame_received_at) * 1000.0, 1)
        return self.last_latency_ms
