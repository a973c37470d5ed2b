"""情绪后端：fer 自带权重的真实模型；DeepFace 情绪结构 + 临时 DEEPFACE_HOME 中的权重文件；每路的情绪推理节奏。"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from devtools.synthetic import empty_frames, face_frames
from workers.analysis.emotion import (
    DEEPFACE_WEIGHTS,
    EMOTIONS,
    EmotionBackendError,
    face_crop,
    import_tensorflow,
    select_backend,
    summarize,
)
from workers.analysis.face import FaceDetector
from workers.analysis.head_pose import HeadPoseEstimator
from workers.models.emotion import EmotionService
from workers.state.vision import Observation, VisionState


@pytest.fixture(scope="module")
def astronaut_faces() -> tuple[np.ndarray, list]:
    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    faces = FaceDetector().detect(bgr)
    assert faces.count == 1
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), list(faces.faces)


def test_bundled_fer_model_calls_astronaut_happy(tmp_path: Path, astronaut_faces) -> None:
    gray, faces = astronaut_faces
    model = select_backend("auto", str(tmp_path))  # 没有 DeepFace 权重 -> fer
    assert model.name == "fer"
    crop = face_crop(gray, faces[0], model.input_size)
    probs = model.predict(np.stack([crop, crop, crop]))  # 一次推理处理一批
    assert probs.shape == (3, len(EMOTIONS))
    estimate = summarize(probs[0])
    assert estimate.dominant == "happy" and estimate.confidence > 0.8


def test_explicit_deepface_without_weights_fails_at_start_with_path(tmp_path: Path) -> None:
    with pytest.raises(EmotionBackendError) as info:
        EmotionService("deepface", str(tmp_path))
    assert str(tmp_path / ".deepface" / "weights" / DEEPFACE_WEIGHTS) in str(info.value)
    with pytest.raises(EmotionBackendError):
        EmotionService("magic", None)


def test_auto_picks_deepface_when_its_weights_exist(
    tmp_path: Path, astronaut_faces, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_tensorflow()
    from deepface.commons import weight_utils
    from deepface.models.demography.tf import Emotion

    # 只为搭出 DeepFace 的情绪网络结构（不下载权重）：替身跳过下载与加载，得到随机初始化的同一结构
    with monkeypatch.context() as m:
        m.setattr(weight_utils, "download_weights_if_necessary", lambda **_: "unused")
        m.setattr(weight_utils, "load_model_weights", lambda model, weight_file: model)
        architecture = Emotion.load_model()
    assert architecture.input_shape == (None, 48, 48, 1) and architecture.output_shape == (None, 7)
    weights = tmp_path / ".deepface" / "weights" / DEEPFACE_WEIGHTS
    weights.parent.mkdir(parents=True)
    architecture.save_weights(str(weights))
    monkeypatch.delenv("DEEPFACE_HOME", raising=False)

    model = select_backend("auto", str(tmp_path))  # 走 DeepFace 自己的加载代码，权重来自临时目录
    assert model.name == "deepface" and model.input_size == 48
    assert "DEEPFACE_HOME" not in os.environ  # 加载后不留下全局副作用
    gray, faces = astronaut_faces
    probs = model.predict(np.stack([face_crop(gray, faces[0], 48)]))
    assert probs.shape == (1, 7) and abs(float(probs.sum()) - 1.0) < 1e-4
    expected = architecture(np.stack([face_crop(gray, faces[0], 48)])[..., None] / 255.0, training=False)
    assert np.allclose(probs, np.asarray(expected), atol=1e-5)  # 加载的正是保存的权重


def test_facial_emotion_runs_every_other_analysed_frame_and_restarts_when_the_face_returns() -> None:
    detector = FaceDetector()
    vision = VisionState(HeadPoseEstimator())
    faces = detector.detect(next(face_frames(1)))
    probs = np.full(7, 1 / 7, np.float32)
    due = []
    for i in range(10):  # 5 fps，帧到达时刻有几毫秒的抖动
        t = i * 0.2 + (0.004 if i % 2 else -0.003)
        due.append(vision.emotion_due(t, 0.2))
        vision.observe(Observation(faces, t, 1.7e9 + t, emotion=probs if due[-1] else None))
    assert due == [True, False] * 5
    gone = detector.detect(next(empty_frames(1)))
    vision.observe(Observation(gone, 2.1, 1.7e9 + 2.1))
    assert vision.emotion is None and vision.emotion_due(2.3, 0.2)  # 脸回来的第一帧就推理
