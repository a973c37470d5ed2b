"""头部姿态：68 个关键点（:mod:`.landmarks`）对 3-D 平均人脸（insightface 包内的 ``meanshape_68``）做 ``cv2.solvePnP``。

坐标约定：相机坐标系（x 向画面右、y 向下、z 指向场景）。yaw > 0：鼻尖转向画面左侧；pitch > 0：抬头、< 0：低头；
roll > 0：头向画面右侧歪。这些是相对相机的角度；相对学生自己看屏幕时的姿态见 :mod:`.attention`。

求姿态只用随头部转动而位置固定的点：眉、鼻、眼、嘴（17–67）与下巴附近的轮廓（6–10）。其余脸颊轮廓点在转头时
落在脸的可见边缘上（边缘本身随转角移动），按固定的 3-D 点去拟合会把转角读小。
"""

from __future__ import annotations

import importlib.util
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

POSE_POINTS = np.r_[6:11, 17:68]
EYE_CORNERS_MM = 90.0  # 平均成人两外眼角间距，给模板定尺度（只影响估计的距离，不影响角度）


def insightface_data(*parts: str) -> Path:
    """insightface 轮子 ``data/`` 下的文件。只读数据文件，不导入 insightface（它的 ``__init__`` 会载入 onnxruntime）。"""
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("找不到 insightface 包（头部姿态的 3-D 平均人脸）：请运行 make run / make test 安装依赖")
    return Path(next(iter(spec.submodule_search_locations))).joinpath("data", *parts)


def mean_face_68() -> np.ndarray:
    """insightface 轮子里的 68 点 3-D 平均人脸，换成相机坐标系与毫米：(68, 3) float64。"""
    with insightface_data("objects", "meanshape_68.pkl").open("rb") as f:
        shape = np.asarray(pickle.load(f), np.float64).reshape(68, 3)
    shape = shape * np.array([1.0, 1.0, -1.0])  # 文件里 z 指向相机
    shape -= shape[30]  # 鼻尖为原点
    return shape * (EYE_CORNERS_MM / float(np.linalg.norm(shape[45] - shape[36])))


@dataclass(frozen=True)
class HeadPose:
    yaw: float
    pitch: float
    roll: float
    reprojection_px: float  # 平均重投影误差（像素），越小越可信


def camera_matrix(image_size: tuple[int, int]) -> np.ndarray:
    """未标定摄像头的近似内参：焦距取图像宽度（约 53° 水平视场），主点在中心。"""
    width, height = image_size
    return np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)


def rotation_to_angles(rvec: np.ndarray) -> tuple[float, float, float]:
    rot, _ = cv2.Rodrigues(rvec)
    # R = Ry(yaw) @ Rx(pitch) @ Rz(roll) 的分解
    yaw = math.degrees(math.atan2(rot[0, 2], rot[2, 2]))
    pitch = math.degrees(math.asin(-max(-1.0, min(1.0, rot[1, 2]))))
    roll = math.degrees(math.atan2(rot[1, 0], rot[1, 1]))
    return yaw, -pitch, roll


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """:func:`rotation_to_angles` 的逆：角度（度） -> 3x3 旋转矩阵。"""
    y, p, r = (math.radians(v) for v in (yaw, -pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


class HeadPoseEstimator:
    """``estimate(points68, image_size)`` -> :class:`HeadPose`（点太少或拟合失败时 None）。无状态，可跨线程共用。

    >>> pose = HeadPoseEstimator().estimate(FaceLandmarker().locate(gray, face), (640, 360))
    """

    def __init__(self, template: np.ndarray | None = None) -> None:
        self.template = mean_face_68() if template is None else template
        self._model = self.template[POSE_POINTS]

    def estimate(self, points: np.ndarray, image_size: tuple[int, int]) -> HeadPose | None:
        all_points = np.asarray(points, np.float64).reshape(68, 2)
        eye_dist = float(np.linalg.norm(all_points[45] - all_points[36]))
        image_points = all_points[POSE_POINTS]
        if eye_dist < 6:
            return None
        cam, dist = camera_matrix(image_size), np.zeros(4)
        # 初值：正对相机，距离按眼角间距估计
        rvec: np.ndarray = np.zeros((3, 1))
        tvec: np.ndarray = np.array([[0.0], [0.0], [cam[0, 0] * EYE_CORNERS_MM / eye_dist]])
        ok, rvec, tvec = cv2.solvePnP(self._model, image_points, cam, dist, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
        if not ok:
            return None
        projected, _ = cv2.projectPoints(self._model, rvec, tvec, cam, dist)
        error = float(np.linalg.norm(projected.reshape(-1, 2) - image_points, axis=1).mean())
        yaw, pitch, roll = rotation_to_angles(rvec)
        return HeadPose(yaw=yaw, pitch=pitch, roll=roll, reprojection_px=error)

    def project(
        self, yaw: float, pitch: float, roll: float, image_size: tuple[int, int], distance_mm: float = 600.0
    ) -> np.ndarray:
        """把模板按给定角度放在相机正前方 ``distance_mm`` 处并投影：(68, 2) 像素（测试求解器本身用）。"""
        rvec, _ = cv2.Rodrigues(rotation(yaw, pitch, roll))
        projected, _ = cv2.projectPoints(
            self.template, rvec, np.array([0.0, 0.0, distance_mm]), camera_matrix(image_size), np.zeros(4)
        )
        return projected.reshape(68, 2)
