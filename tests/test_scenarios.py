"""监考场景：合成画面（真实人脸照片）经真实检测器与每流状态对象（与工作进程相同的路径，不经网络）。"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
import pytest

from workers.analysis.face import FaceDetector
from workers.synthetic import empty_frames, face_frames
from workers.tracker import Observation, StreamTracker

FPS = 15.0
STEP = 3  # 15 fps 解码、5 fps 分析


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def run(frames: Iterable[np.ndarray], detector: FaceDetector) -> tuple[StreamTracker, list[dict]]:
    tracker = StreamTracker(publish_interval_s=0.4, analysis_interval_s=0.2)
    timeline = []
    for i, image in enumerate(frames):
        if i % STEP:
            continue
        t = i / FPS
        faces = detector.detect(image)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        tracker.observe(Observation(faces, t, 1.7e9 + t, gray=gray), t)
        timeline.append(
            {
                "t": t,
                "codes": {a.code for a in tracker.active},
                "multi": tracker.multi_face_secs,
                "occlusion": tracker.occlusion_ratio,
            }
        )
    return tracker, timeline


def first_time(timeline: list[dict], code: str, after: float = 0.0) -> float | None:
    return next((p["t"] for p in timeline if p["t"] >= after and code in p["codes"]), None)


def test_second_person_raises_multi_face_and_counts_seconds(detector: FaceDetector) -> None:
    frames = [*face_frames(45, seed=1), *face_frames(90, seed=1, second_face=True)]
    tracker, timeline = run(frames, detector)
    onset = first_time(timeline, "MULTI_FACE")
    assert onset is not None and onset - 3.0 <= 2.0  # 第二人于 3 s 出现
    multi = [p["multi"] for p in timeline]
    assert multi[14] == 0.0 and multi[-1] > multi[25] > 0 and multi[-1] == pytest.approx(5.8, abs=0.5)


def test_face_leaving_raises_no_face_and_returning_clears_it(detector: FaceDetector) -> None:
    frames = [*face_frames(30, seed=2), *empty_frames(75, seed=2), *face_frames(60, seed=2)]
    tracker, timeline = run(frames, detector)
    onset = first_time(timeline, "NO_FACE")
    assert onset is not None and 2.0 <= onset <= 4.5  # 人于 2 s 离开，持续 2 s 后报告
    assert "NO_FACE" not in timeline[-1]["codes"]
    (episode,) = [e for e in tracker.anomalies.episodes if e.code == "NO_FACE"]
    assert episode.end is not None and 6.5 <= episode.end <= 7.5
    assert tracker.attention_score is not None and tracker.attention_score > 0.8


def test_covering_lower_face_raises_occlusion(detector: FaceDetector) -> None:
    frames = [*face_frames(60, seed=3), *face_frames(90, seed=3, cover_lower=True), *face_frames(60, seed=3)]
    _, timeline = run(frames, detector)
    clean = [p["occlusion"] for p in timeline if 1.0 <= p["t"] < 4.0]
    covered = [p["occlusion"] for p in timeline if 6.0 <= p["t"] < 10.0]
    assert max(clean) <= 0.15 and float(np.median(covered)) >= 0.4, (clean, covered)
    onset = first_time(timeline, "OCCLUSION")
    assert onset is not None and onset <= 4.0 + 3.0
    assert "OCCLUSION" not in timeline[-1]["codes"]
