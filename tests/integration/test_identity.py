"""同一个学生：真实照片（skimage 的 astronaut 与 insightface 轮子 t1.jpg 里的人）经 H.264 压缩，走真实检测器、68 点关键点、
dlib 描述子与每流状态（与工作进程相同的分析路径；描述子在这里同步计算，工作进程里在子进程中算）。"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from devtools.bench.scenarios import FPS, Models, first_time, replay
from devtools.synthetic import empty_frames, face_frames, h264_roundtrip, id_photo
from workers.analysis.anomalies import DEFAULT_POLICIES, AnomalyTracker
from workers.analysis.identity import IdentityTracker, face_chip

SWAP_S = 8.0


@pytest.fixture(scope="module")
def models() -> Models:
    return Models.load()


def test_another_person_in_the_seat_raises_identity_changed(models: Models) -> None:
    frames = [
        *face_frames(int(SWAP_S * FPS), FPS, seed=3),
        *face_frames(int(12 * FPS), FPS, seed=3, person="t1-0"),
    ]
    tracker, timeline = replay(h264_roundtrip(frames, FPS), models)
    assert tracker.vision.identity.enrolled
    first = first_time(timeline, "IDENTITY_CHANGED")
    assert first is not None and SWAP_S < first <= SWAP_S + 10.0, first
    before = [p["identity_distance"] for p in timeline if p["t"] < SWAP_S and p["identity_distance"] is not None]
    assert before and max(before) < 0.45, before  # 同一人
    assert timeline[-1]["identity_distance"] > 0.6 and "IDENTITY_CHANGED" in timeline[-1]["codes"]


@pytest.mark.parametrize("photo_of", ["astronaut", "t1-2"])
def test_reference_photo_is_the_baseline_from_the_first_check(models: Models, photo_of: str) -> None:
    """创建会话时给了参考照片：不从画面登记，第一次比对就对照片。照片上是别人（替考从一开始就坐在那里）->
    IDENTITY_CHANGED；是本人（原图整幅，取景、大小与背景都与画面不同）-> 不报告。"""
    frames = h264_roundtrip(list(face_frames(int(12 * FPS), FPS, seed=3)), FPS)
    tracker, timeline = replay(frames, models, photo=id_photo(photo_of))
    identity = tracker.vision.identity
    assert identity.source == "photo"
    distances = [p["identity_distance"] for p in timeline if p["identity_distance"] is not None]
    first = first_time(timeline, "IDENTITY_CHANGED")
    if photo_of == "astronaut":
        assert first is None and distances and max(distances) < 0.45, distances
    else:
        assert first is not None and first <= 8.0 and min(distances) > 0.6, (first, distances)


def test_photo_without_a_usable_face_falls_back_to_enrolling_from_the_stream(models: Models) -> None:
    ok, jpeg = cv2.imencode(".jpg", next(empty_frames(1)))  # 一张没有人的照片
    frames = h264_roundtrip(list(face_frames(int(8 * FPS), FPS, seed=3)), FPS)
    tracker, timeline = replay(frames, models, photo=jpeg.tobytes())
    identity = tracker.vision.identity
    assert ok and identity.source == "photo_unusable" and identity.enrolled
    assert first_time(timeline, "IDENTITY_CHANGED") is None


def test_same_person_for_ten_minutes_with_head_motion_glasses_and_compression_keeps_identity(models: Models) -> None:
    """十分钟，每次比对取一帧：头在 ±15°（yaw）/ -10..8°（pitch）内随机转动（30 种姿态，每种渲染一次），
    一半时间戴眼镜，H.264 压缩（crf 24–34 随机）。"""
    rng = np.random.default_rng(11)
    poses = [{"yaw_deg": float(rng.uniform(-15, 15)), "pitch_deg": float(rng.uniform(-10, 8))} for _ in range(30)]
    clips = [list(face_frames(3, FPS, seed=i, glasses=i % 2 == 1, **pose)) for i, pose in enumerate(poses)]
    identity = IdentityTracker()
    anomalies = AnomalyTracker({"IDENTITY_CHANGED": DEFAULT_POLICIES["IDENTITY_CHANGED"]})
    distances = []
    for step in range(int(600 / 0.5)):
        t = step * 0.5
        if identity.due(t, usable=True):
            burst = clips[int(rng.integers(len(clips)))]
            image = h264_roundtrip(burst, FPS, crf=int(rng.integers(24, 35)))[-1]
            faces = models.detector.detect(image)
            assert faces.faces, t
            gray = image[..., 1]  # 关键点只需要亮度
            marks = models.landmarker.locate(gray, faces.faces[0])
            identity.deliver(models.describer.describe(face_chip(image[..., ::-1], faces.faces[0], marks)), t)
            condition = identity.condition()
            distances.append(identity.distance)
        else:
            condition = identity.condition()
        anomalies.update({"IDENTITY_CHANGED": condition}, t)
    assert identity.enrolled
    assert anomalies.episodes == [], (anomalies.episodes, max(distances))


def test_identity_service_stays_within_its_budget_and_survives_its_process_dying(models: Models) -> None:
    """真实的子进程：结果与进程内计算相同；超出算力预算时拒绝；子进程被杀后按退避重启，比对恢复。"""
    import threading
    import time

    import psutil

    from workers.models.identity import IdentityService

    image = next(face_frames(1, FPS))
    face = models.detector.detect(image).faces[0]
    chip = face_chip(image[..., ::-1], face, models.landmarker.locate(image[..., 1], face))
    expected = models.describer.describe(chip)
    service = IdentityService(budget_cores=0.25)
    service.start()
    try:

        def describe() -> np.ndarray | None:
            done, out = threading.Event(), []
            deadline = time.monotonic() + 20
            while not service.submit(chip, lambda d: (out.append(d), done.set())):
                assert time.monotonic() < deadline, "服务没有接受请求"
                time.sleep(0.05)
            assert done.wait(10)
            return out[0]

        first = describe()
        assert first is not None and np.allclose(first, expected, atol=1e-4)
        # 尽快地提交 2 秒：0.25 核、每个约 0.1 秒时至多 5 个再加 2 个的余量（不限的话子进程 2 秒能算约 20 个）
        accepted, until = 0, time.monotonic() + 2.0
        while time.monotonic() < until:
            accepted += service.submit(chip, lambda d: None)
            time.sleep(0.01)
        assert 2 <= accepted <= 8, accepted
        time.sleep(1.0)  # 让排队的算完
        # spawn 还会起一个 resource_tracker 进程：只杀算描述子的那个
        (child,) = [c for c in psutil.Process().children() if "spawn_main" in " ".join(c.cmdline())]
        child.kill()
        # 杀掉之后的第一个请求失败（None），之后重启的子进程给出同样的结果
        results = [describe() for _ in range(2)]
        results += [describe()] if results[-1] is None else []
        assert results[-1] is not None and np.allclose(results[-1], expected, atol=1e-4)
        assert service.restarts == 1
    finally:
        service.stop()
