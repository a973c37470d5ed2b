"""心率部分的每流状态：解码视频的 rPPG 与学生端编码前采样的 rPPG，以及发给学生端的采样框。

解码帧在拉流线程、学生端样本在样本读取线程、估计在分析线程：两个估计器内部各自加锁。
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.face import Face
from ..analysis.ppg import PpgResult, PulseMonitor, RppgEstimator

Roi = tuple[float, float, float, float]


class PulseState:
    # 学生端样本超过该时长没有到达即视为停止（改用解码视频的估计）
    CLIENT_PPG_STALE_S = 3.0
    # 采样框没有变化时也每隔该时长重发一次 ppg.roi（学生端重连、重新推流后很快恢复采样）
    ROI_RESEND_S = 2.0
    # 心率按约 10 秒的窗口估计，0.4 秒一次的推送之间几乎不变：同一结果最多复用这么久（每次估计约 3 ms）
    ESTIMATE_EVERY_S = 1.0

    def __init__(self) -> None:
        self.video = PulseMonitor()
        self.client = RppgEstimator()  # 学生端编码前采样的皮肤颜色
        self._client_samples_at: float | None = None
        self._roi_sent: Roi | None = None
        self._roi_sent_at: float | None = None
        self._roi_seq = 0
        self._estimate: tuple[float, PpgResult] | None = None  # (估计时刻, 结果)

    # ---- 拉流线程 ----
    def add_frame(self, t_s: float, i420: np.ndarray, key_frame: bool) -> None:
        """每个解码帧（流内时间 ``t_s``，解码器的 I420 平面）：在当前采样框内取皮肤均值。"""
        self.video.add_frame(t_s, i420, key_frame)

    # ---- 学生端样本读取线程 ----
    def add_client_samples(self, rows: list[list[float]], now: float) -> None:
        """一批学生端样本 ``[t_ms, r, g, b]``（网关已校验）。"""
        for t_ms, r, g, b in rows:
            self.client.add(t_ms / 1000.0, np.array([r, g, b], dtype=np.float64))
        self._client_samples_at = now

    # ---- 分析线程 ----
    def follow_face(self, face: Face | None, image_size: tuple[int, int]) -> None:
        """采样框跟随主人脸；没有人脸时停止采样。"""
        if face is None:
            self.video.clear_face()
        else:
            self.video.set_face(face.landmarks, image_size)

    def heart_rate(self, now: float) -> PpgResult:
        """当前心率估计（``ESTIMATE_EVERY_S`` 内复用上次的结果）。"""
        if self._estimate is None or not 0.0 <= now - self._estimate[0] < self.ESTIMATE_EVERY_S:
            self._estimate = (now, self._fresh_estimate(now))
        return self._estimate[1]

    def _fresh_estimate(self, now: float) -> PpgResult:
        """学生端样本在持续到达时优先用它（编码前的画面，脉搏未被量化掉）；
        它还没有给出心率而解码视频给出了时，用视频的。"""
        fresh = self._client_samples_at is not None and now - self._client_samples_at <= self.CLIENT_PPG_STALE_S
        client = dataclasses.replace(self.client.estimate(), source="client") if fresh else None
        if client is not None and client.hr_bpm is not None:
            return client  # 不必再算视频的估计（每次约 3 ms）
        video = dataclasses.replace(self.video.estimate(), source="video")
        return client if client is not None and video.hr_bpm is None else video

    def roi_due(self, now: float, image_size: tuple[int, int] | None) -> tuple[int, Roi | None] | None:
        """需要发给学生端的采样框 ``(seq, 相对坐标)``：框变化时立即，否则每 ``ROI_RESEND_S`` 秒一次；不需要时 None。"""
        roi: Roi | None = None
        box = self.video.roi
        if box is not None and image_size is not None:
            width, height = image_size
            x0, y0, x1, y1 = box
            roi = (round(x0 / width, 4), round(y0 / height, 4), round(x1 / width, 4), round(y1 / height, 4))
        changed = roi != self._roi_sent
        if not changed and self._roi_sent_at is not None and now - self._roi_sent_at < self.ROI_RESEND_S:
            return None
        if changed:
            self._roi_seq += 1
        self._roi_sent, self._roi_sent_at = roi, now
        return self._roi_seq, roi
