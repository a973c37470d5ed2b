"""监考场景：合成画面（真实人脸照片）经真实检测器与每流状态对象（与工作进程相同的路径，不经网络）。"""

from __future__ import annotations

import numpy as np
import pytest

from devtools.bench.scenarios import Models, first_time, replay
from devtools.synthetic import empty_frames, face_frames


@pytest.fixture(scope="module")
def models() -> Models:
    return Models.load()


def test_second_person_raises_multi_face_and_counts_seconds(models: Models) -> None:
    frames = [*face_frames(45, seed=1), *face_frames(90, seed=1, second_face=True)]
    tracker, timeline = replay(frames, models)
    onset = first_time(timeline, "MULTI_FACE")
    assert onset is not None and onset - 3.0 <= 2.0  # 第二人于 3 s 出现
    multi = [p["multi"] for p in timeline]
    assert multi[14] == 0.0 and multi[-1] > multi[25] > 0 and multi[-1] == pytest.approx(5.8, abs=0.5)


def test_face_leaving_raises_no_face_and_returning_clears_it(models: Models) -> None:
    frames = [*face_frames(30, seed=2), *empty_frames(75, seed=2), *face_frames(60, seed=2)]
    tracker, timeline = replay(frames, models)
    onset = first_time(timeline, "NO_FACE")
    assert onset is not None and 2.0 <= onset <= 4.5  # 人于 2 s 离开，持续 2 s 后报告
    assert "NO_FACE" not in timeline[-1]["codes"]
    (episode,) = [e for e in tracker.anomalies.episodes if e.code == "NO_FACE"]
    assert episode.end is not None and 6.5 <= episode.end <= 7.5
    assert tracker.attention_score is not None and tracker.attention_score > 0.8


def test_covering_lower_face_raises_occlusion(models: Models) -> None:
    frames = [*face_frames(60, seed=3), *face_frames(90, seed=3, cover_lower=True), *face_frames(60, seed=3)]
    _, timeline = replay(frames, models)
    clean = [p["occlusion"] for p in timeline if 1.0 <= p["t"] < 4.0]
    covered = [p["occlusion"] for p in timeline if 6.0 <= p["t"] < 10.0]
    assert max(clean) <= 0.15 and float(np.median(covered)) >= 0.4, (clean, covered)
    onset = first_time(timeline, "OCCLUSION")
    assert onset is not None and onset <= 4.0 + 3.0
    assert "OCCLUSION" not in timeline[-1]["codes"]
