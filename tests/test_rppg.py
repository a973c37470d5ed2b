"""rPPG：已知心率的合成人脸（真实照片 + neurokit2 脉搏）走与工作进程相同的路径。"""

from __future__ import annotations

import numpy as np
import pytest

from workers.analysis.face import FaceDetector
from workers.analysis.ppg import PulseMonitor, RppgEstimator, quality_from_snr
from workers.bench.accuracy import run_clip, uncompressed
from workers.synthetic import face_frames, simulate_pulse

FPS = 15.0


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.mark.parametrize("hr,motion", [(58, False), (72, True), (118, False)])
def test_uncompressed_clip_heart_rate_within_tolerance(detector: FaceDetector, hr: float, motion: bool) -> None:
    pulse = simulate_pulse(20, hr, seed=int(hr))
    frames = face_frames(int(20 * FPS), FPS, pulse=pulse, motion=motion, drift=0.02, seed=int(hr), noise=4.0)
    score = run_clip(uncompressed(frames), pulse, detector)
    assert score.first_hr_s is not None and score.first_hr_s <= 12.0
    assert len(score.errors) >= 0.5 * score.estimates, "大部分时间应给出心率"
    assert float(np.mean(score.errors)) <= 3.0, score.errors


def test_no_pulse_gives_no_heart_rate(detector: FaceDetector) -> None:
    frames = face_frames(int(20 * FPS), FPS, pulse=None, motion=True, drift=0.02, seed=5, noise=4.0)
    score = run_clip(uncompressed(frames), None, detector)
    assert score.errors == [] and score.estimates > 10
    assert max(score.quality) < 0.4


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
