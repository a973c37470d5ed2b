"""人脸检测（libfacedetection / YuNet 系列，yuface 轮子内置权重，离线可用）。

输出每张脸的框、置信度与 5 个关键点（右眼、左眼、鼻尖、右嘴角、左嘴角；“右”指被拍者的右侧）。
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import yuface


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x, y, w, h（原图像素）
    score: float  # 0..1
    landmarks: np.ndarray = field(repr=False)  # (5, 2) float32，原图像素

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


@dataclass(frozen=True)
class FaceDetections:
    faces: tuple[Face, ...]
    image_size: tuple[int, int]  # (宽, 高)

    @property
    def count(self) -> int:
        return len(self.faces)

    @property
    def detected(self) -> bool:
        return bool(self.faces)


class FaceDetector:
    """把图像缩放到 ``detect_width`` 宽后检测，再把坐标换算回原图。

    yuface 的 C 实现是无状态的，同一实例可在单个分析线程中复用。
    """

    def __init__(self, detect_width: int = 320, min_score: float = 0.6) -> None:
        self.detect_width = detect_width
        self.min_score = min_score

    def detect(self, image_bgr: np.ndarray) -> FaceDetections:
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ValueError("需要 HxWx3 的 uint8 BGR 图像")
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self.detect_width / width)
        small = image_bgr
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
        confs, boxes, landmarks = yuface.detect(np.ascontiguousarray(small), conf=self.min_score)
        faces = []
        for conf, box, marks in zip(confs, boxes, landmarks):
            box_full = tuple(float(v) / scale for v in box)
            points = marks.astype(np.float32).reshape(5, 2) / scale
            faces.append(Face(box=box_full, score=float(conf) / 100.0, landmarks=points))
        faces.sort(key=lambda f: f.area, reverse=True)
        return FaceDetections(faces=tuple(faces), image_size=(width, height))
