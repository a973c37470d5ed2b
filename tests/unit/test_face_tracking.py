"""局部检测（上一帧人脸附近）与整幅检测的结果一致，且不漏掉新出现、离开的人脸（真实检测器、真实人脸照片）。"""

from __future__ import annotations

import numpy as np
import pytest

from devtools.synthetic import empty_frames, face_frames
from workers.analysis.face import FaceDetector
from workers.analysis.face_tracking import FaceTracker

STEP_S = 0.2  # 5 fps 分析


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def _motion_error(landmarks: np.ndarray, times: np.ndarray) -> float:
    """关键点相对真实头部运动的均方根误差（像素）：``face_frames`` 把人像水平移动 8 sin(2πt/4)、
    竖直移动 floor(28.8 + 3 sin(2πt/3))；减去它与各点的平均位置，剩下的就是检测误差。"""
    dx = 8 * np.sin(2 * np.pi * times / 4.0)
    dy = np.floor(360 * 0.08 + 3 * np.sin(2 * np.pi * times / 3.0))
    rx, ry = landmarks[:, :, 0] - dx[:, None], landmarks[:, :, 1] - dy[:, None]
    rx, ry = rx - rx.mean(axis=0), ry - ry.mean(axis=0)
    return float(np.sqrt((rx**2 + ry**2).mean()))


def test_region_detection_is_as_accurate_as_full_frame_detection(detector: FaceDetector) -> None:
    tracker = FaceTracker()
    frames = list(face_frames(300, seed=5))[::3]  # 20 秒，头部在动
    near, full = [], []
    for i, frame in enumerate(frames):
        a, b = tracker.detect(detector, frame, i * STEP_S), detector.detect(frame)
        assert a.count == b.count == 1 and a.image_size == b.image_size
        assert np.abs(np.subtract(a.faces[0].box, b.faces[0].box)).max() <= 8.0  # 检测比例下 4 像素
        near.append(a.faces[0].landmarks)
        full.append(b.faces[0].landmarks)
    times = np.arange(len(frames)) * STEP_S
    near_error, full_error = _motion_error(np.array(near), times), _motion_error(np.array(full), times)
    assert near_error <= full_error * 1.1 + 0.2 and near_error < 3.0, (near_error, full_error)
    # 1 秒一次整幅检测，其余都是局部
    assert tracker.full_scans == 20 and tracker.region_scans == len(frames) - 20


def test_region_stays_put_while_the_face_only_jitters(detector: FaceDetector) -> None:
    tracker = FaceTracker()
    frames = list(face_frames(45, seed=5, motion=False))[::3]
    results = [tracker.detect(detector, frame, i * STEP_S) for i, frame in enumerate(frames)]
    reference = detector.detect(frames[0]).faces[0]
    for faces in results:  # 块对齐到网格：静止的脸每帧都在同一块里检测，不随块抖动（检测比例下至多 2 像素）
        assert np.abs(np.subtract(faces.faces[0].box, reference.box)).max() <= 4.0
        assert np.abs(faces.faces[0].landmarks - reference.landmarks).max() <= 4.0
    assert len({faces.faces[0].box for faces in results}) <= 2  # 局部检测的结果逐帧相同（另一个是整幅检测的）


def test_second_person_is_found_by_the_next_full_scan_and_then_tracked(detector: FaceDetector) -> None:
    tracker = FaceTracker(full_scan_s=1.0)
    alone = list(face_frames(9, seed=1))[::3]  # 0.0、0.2、0.4 s
    together = list(face_frames(45, seed=1, second_face=True))[::3]  # 0.6 s 起有第二个人
    counts = [tracker.detect(detector, f, i * STEP_S).count for i, f in enumerate([*alone, *together])]
    first_two = counts.index(2) * STEP_S
    assert counts[:3] == [1, 1, 1] and 0.6 <= first_two <= 1.0 + 1e-9
    assert all(c == 2 for c in counts[counts.index(2) :])  # 找到之后每帧都在局部检测里跟着两个人


def test_face_leaving_is_confirmed_by_a_full_scan_in_the_same_frame(detector: FaceDetector) -> None:
    tracker = FaceTracker()
    tracker.detect(detector, next(face_frames(1, seed=2)), 0.0)
    tracker.detect(detector, next(face_frames(1, seed=2)), 0.2)
    assert (tracker.full_scans, tracker.region_scans) == (1, 1)
    gone = tracker.detect(detector, next(empty_frames(1, seed=2)), 0.4)
    assert gone.count == 0 and (tracker.full_scans, tracker.region_scans) == (2, 2)
    tracker.detect(detector, next(empty_frames(1, seed=2)), 0.6)  # 没有人脸时每帧整幅检测
    assert tracker.full_scans == 3

