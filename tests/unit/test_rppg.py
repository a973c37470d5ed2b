"""rPPG：已知心率的合成人脸（真实照片 + neurokit2 脉搏）走与工作进程相同的路径。"""

from __future__ import annotations

import numpy as np
import pytest

from devtools.synthetic import empty_frames, face_frames
from tests.helpers import client_ppg_rows
from workers.analysis.face import FaceDetector
from workers.analysis.ppg import PulseMonitor, RppgEstimator, face_roi, quality_from_snr
from workers.state.stream_state import StreamState
from workers.state.vision import Observation

FPS = 15.0


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_estimator_waits_for_enough_signal_and_resets_on_gaps() -> None:
    est = RppgEstimator(window_s=10, min_window_s=6)
    rng = np.random.default_rng(0)
    for i in range(60):  # 4 秒
        est.add(i / FPS, np.array([150.0, 120.0, 100.0]) + rng.normal(0, 0.1, 3))
    assert est.estimate().hr_bpm is None and est.estimate().signal_quality is None
    est.add(100.0, np.array([150.0, 120.0, 100.0]))  # 长时间中断后的样本：重新积累
    assert est.estimate().window_s == 0.0


def test_quality_mapping_is_monotonic_and_bounded() -> None:
    values = [quality_from_snr(s) for s in (-10, -3, 0, 3, 6, 20)]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] == 1.0


def test_monitor_keeps_roi_steady_under_detector_jitter(detector: FaceDetector) -> None:
    frame = next(face_frames(1))
    face = detector.detect(frame).faces[0]
    monitor = PulseMonitor()
    monitor.set_face(face.landmarks, (640, 360))
    first = monitor._roi
    monitor.set_face(face.landmarks + 1.0, (640, 360))  # 1 像素抖动：框不动
    assert monitor._roi == first
    monitor.set_face(face.landmarks + 30.0, (640, 360))  # 真正移动：框跟随
    assert monitor._roi != first


def test_tracker_uses_client_samples_while_they_arrive_then_falls_back_to_video(detector: FaceDetector) -> None:
    tracker = StreamState(publish_interval_s=0.4, analysis_interval_s=0.2)
    rows = client_ppg_rows(detector, 84.0, 14.0, seed=3)
    now = 100.0
    for start in range(0, len(rows), 15):  # 每秒一批，和学生端一样
        tracker.pulse.add_client_samples(rows[start : start + 15], now)
        now += 1.0
    result = tracker.pulse.heart_rate(now)
    assert result.source == "client" and result.hr_bpm is not None and abs(result.hr_bpm - 84.0) <= 3.0, result
    assert result.signal_quality is not None and result.signal_quality >= 0.4
    # 样本停止到达：改用解码视频（这里没有视频帧，所以没有心率）
    stale = tracker.pulse.heart_rate(now + tracker.pulse.CLIENT_PPG_STALE_S + 0.5)
    assert stale.source == "video" and stale.hr_bpm is None


def test_roi_for_the_student_is_relative_and_resent_on_change_or_periodically(detector: FaceDetector) -> None:
    tracker = StreamState(publish_interval_s=0.4, analysis_interval_s=0.2)
    frame = next(face_frames(1))
    faces = detector.detect(frame)
    tracker.observe(Observation(faces, 1.0, 1.0), now=1.0)
    seq, roi = tracker.roi_due(1.0)
    x0, y0, x1, y1 = face_roi(faces.faces[0].landmarks, faces.image_size)
    assert roi == pytest.approx((x0 / 640, y0 / 360, x1 / 640, y1 / 360), abs=1e-3) and all(0 <= v <= 1 for v in roi)
    assert tracker.roi_due(1.5) is None  # 没变化：不重发
    assert tracker.roi_due(1.0 + tracker.pulse.ROI_RESEND_S) == (seq, roi)  # 定期重发，序号不变
    tracker.observe(Observation(detector.detect(next(empty_frames(1))), 4.0, 4.0), now=4.0)
    assert tracker.roi_due(4.0) == (seq + 1, None)  # 人脸离开：通知学生端停止采样
