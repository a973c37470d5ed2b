"""头部姿态来自像素：肖像贴在 3-D 平均人脸上转到已知角度（devtools.synthetic._posed），经 H.264 压缩，
走真实检测器、68 点关键点、姿态求解与每流状态（与工作进程相同的分析路径，不经网络）。"""

from __future__ import annotations

import numpy as np
import pytest

from devtools.bench.pose import LEAD_S, held_angles, posed_clip
from devtools.bench.scenarios import Models, first_time, replay
from workers.analysis.anomalies import DEFAULT_POLICIES


@pytest.fixture(scope="module")
def models() -> Models:
    return Models.load()


def held(timeline: list[dict], key: str) -> float:
    return float(np.median(held_angles(timeline, key)))


def test_yaw_and_pitch_from_pixels_follow_the_turn(models: Models) -> None:
    errors = {}
    for yaw in (0, 15, 30, 45, 60):
        _, timeline = replay(posed_clip(yaw_deg=float(yaw)), models)
        errors[yaw] = abs(held(timeline, "yaw") - yaw)
    assert np.mean([errors[a] for a in (0, 15, 30, 45)]) <= 8.0, errors
    assert errors[60] <= 25.0, errors  # 60° 时关键点已明显低估，但仍远超视线偏离的阈值
    for pitch in (-20, -35):
        _, timeline = replay(posed_clip(pitch_deg=float(pitch)), models)
        # 低头读小（-35° 读作约 -22°），LOOKING_DOWN 的阈值按此取 18°
        assert abs(held(timeline, "pitch") - pitch) <= 15.0, (pitch, held(timeline, "pitch"))
        assert abs(held(timeline, "yaw")) <= 8.0


def test_turn_raises_look_away_and_looking_down_is_its_own_anomaly(models: Models) -> None:
    onset = DEFAULT_POLICIES["LOOK_AWAY"].onset_s
    _, timeline = replay(posed_clip(yaw_deg=40.0), models)
    first = first_time(timeline, "LOOK_AWAY")
    assert first is not None and LEAD_S <= first <= LEAD_S + onset + 1.0, first
    assert "LOOKING_DOWN" not in {c for p in timeline for c in p["codes"]}

    _, timeline = replay(posed_clip(pitch_deg=-35.0), models)
    first = first_time(timeline, "LOOKING_DOWN")
    assert first is not None and first <= LEAD_S + DEFAULT_POLICIES["LOOKING_DOWN"].onset_s + 1.0, first
    assert "LOOK_AWAY" not in {c for p in timeline for c in p["codes"]}

    _, timeline = replay(posed_clip(), models)  # 一直看着屏幕（有小幅头部运动）
    assert {c for p in timeline for c in p["codes"]} == set()


def test_off_centre_camera_is_learnt_as_the_neutral_pose(models: Models) -> None:
    """摄像头在侧面：学生坐在画面边上、看着屏幕，相对相机本来就转了很多。"""
    screen = {"yaw_deg": -15.0}
    tracker, timeline = replay(posed_clip(center_x=0.12, lead=screen, **screen), models)
    camera_yaw = tracker.vision.neutral.yaw
    assert camera_yaw is not None and abs(camera_yaw) > 30.0  # 不学中立姿态就会一直报视线偏离
    assert {c for p in timeline for c in p["codes"]} == set()
    assert tracker.attention_score is not None and tracker.attention_score > 0.9

    tracker, timeline = replay(posed_clip(center_x=0.12, lead=screen, yaw_deg=25.0), models)  # 从屏幕转开 40°
    assert first_time(timeline, "LOOK_AWAY") is not None
