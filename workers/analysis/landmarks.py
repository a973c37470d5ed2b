"""面部 68 个关键点：dlib 的形状预测器（``face_recognition_models`` 包内的 iBUG 300-W 68 点模型，离线可用）。

检测器（YuNet）给出的 5 个点只有眼、鼻尖、嘴角，转头时它们几乎不跟着动（转 45° 时鼻尖只偏离两眼中点约 0.2 倍眼距，
真实转头约 0.5 倍，见 FACTS）；68 点包括眉、眼角、鼻梁、鼻翼、唇线与下巴，跟随头部姿态，用来求姿态
（:mod:`.head_pose`）。在这台机器上每张脸约 2.5 ms（单核）。

关键点序号（iBUG 300-W，"左/右"指画面左右）：0–16 脸颊轮廓（8 为下巴），17–26 眉，27–30 鼻梁，31–35 鼻翼，
36–41 / 42–47 画面左 / 右眼，48–67 嘴。
"""

from __future__ import annotations

import dlib
import face_recognition_models
import numpy as np

from .face import Face


class FaceLandmarker:
    """``locate(gray, face)`` -> (68, 2) float32，原图像素。同一实例只在一个线程里使用（分析线程）。

    预测器按 dlib 自己的人脸检测框训练（正方形、比 YuNet 的框宽约 10%、中心低约 6% 框高，在几张照片上量得），
    所以先把检测框换成那种框再预测：框的位置与大小决定回归树的初始形状，框不对时关键点偏向正脸。

    >>> marks = FaceLandmarker().locate(gray, detections.faces[0])
    >>> marks[30]  # 鼻尖
    """

    BOX_SCALE = 1.1
    BOX_DROP = 0.06

    def __init__(self, model_path: str | None = None) -> None:
        self._predictor = dlib.shape_predictor(model_path or face_recognition_models.pose_predictor_model_location())

    def locate(self, gray: np.ndarray, face: Face) -> np.ndarray:
        x, y, w, h = face.box
        side = self.BOX_SCALE * w
        cx, cy = x + w / 2, y + h / 2 + self.BOX_DROP * h
        box = dlib.rectangle(round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))
        shape = self._predictor(np.ascontiguousarray(gray), box)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


class LandmarkTracker:
    """每路一个：脸的形状没变时沿用上次的 68 个点（随 5 个检测点的中心平移），省去约 4/5 的关键点开销。

    形状 = 检测器 5 个点去掉中心、按眼距归一化；与上次算 68 点时相比任一坐标变了 ``SHAPE_CHANGE`` 以上（实测静止
    与小幅头动时 0.05–0.07，转头 10° 约 0.08、20° 约 0.14），或已过了 ``REFRESH_S``，就重新预测。

    >>> marks = stream.landmarks.locate(landmarker, gray, face, t)
    """

    SHAPE_CHANGE = 0.08
    REFRESH_S = 1.0

    def __init__(self) -> None:
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None  # 68 点、形状、中心、时刻

    @staticmethod
    def _normalised(face: Face) -> tuple[np.ndarray, np.ndarray]:
        points = face.landmarks.astype(np.float64)
        center = points.mean(axis=0)
        return (points - center) / max(1.0, float(np.linalg.norm(points[1] - points[0]))), center

    def locate(self, landmarker: FaceLandmarker, gray: np.ndarray, face: Face, t: float) -> np.ndarray:
        shape, center = self._normalised(face)
        if self._last is not None:
            marks, last_shape, last_center, at = self._last
            if 0.0 <= t - at < self.REFRESH_S and float(np.abs(shape - last_shape).max()) < self.SHAPE_CHANGE:
                return (marks + (center - last_center)).astype(np.float32)
        marks = landmarker.locate(gray, face)
        self._last = (marks, shape, center, t)
        return marks
