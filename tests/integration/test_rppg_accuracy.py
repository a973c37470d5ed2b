"""rPPG 精度：已知心率的合成人脸（真实照片 + neurokit2 脉搏）整段 20 秒片段走与工作进程相同的分析路径
（进程内，但每段需数秒，因此不在 ``pytest -m unit`` 里）。"""

from __future__ import annotations

import numpy as np
import pytest

from devtools.bench.accuracy import run_clip, uncompressed
from devtools.synthetic import face_frames, simulate_pulse
from workers.analysis.face import FaceDetector

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
