"""头部姿态与专注度：5 个关键点 + 3-D 平均人脸模板，``cv2.solvePnP`` 求旋转。

坐标约定：相机坐标系（x 向右、y 向下、z 指向场景）。yaw > 0 表示脸转向画面右侧，
pitch > 0 表示抬头，roll > 0 表示头向画面右侧歪。
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# 平均成人面部的 5 个点（毫米），顺序与检测器关键点一致：右眼、左眼、鼻尖、右嘴角、左嘴角。
# 鼻尖为原点，眼与嘴角在鼻尖之后（离相机更远，z 为正）。
FACE_MODEL_MM = np.array(
    [
        [-32.0, -35.0, 32.0],
        [32.0, -35.0, 32.0],
        [0.0, 0.0, 0.0],
        [-24.0, 32.0, 24.0],
        [24.0, 32.0, 24.0],
    ]
)


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


def estimate_head_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> HeadPose | None:
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    cam = camera_matrix(image_size)
    dist = np.zeros(4)
    eye_dist = float(np.linalg.norm(points[1] - points[0]))
    if eye_dist < 4:
        return None
    # 初值：正对相机，距离按眼距估计
    depth = cam[0, 0] * 64.0 / eye_dist
    rvec: np.ndarray = np.zeros((3, 1))
    tvec: np.ndarray = np.array([[0.0], [0.0], [depth]])
    ok, rvec, tvec = cv2.solvePnP(FACE_MODEL_MM, points, cam, dist, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    projected, _ = cv2.projectPoints(FACE_MODEL_MM, rvec, tvec, cam, dist)
    error = float(np.linalg.norm(projected.reshape(5, 2) - points, axis=1).mean())
    yaw, pitch, roll = rotation_to_angles(rvec)
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll, reprojection_px=error)


def project_face(yaw: float, pitch: float, roll: float, image_size: tuple[int, int], distance_mm: float = 600.0) -> np.ndarray:
    """把模板按给定角度放在相机前 ``distance_mm`` 处并投影，返回 (5, 2) 关键点（测试与基准用）。"""
    y, p, r = (math.radians(v) for v in (yaw, -pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rvec, _ = cv2.Rodrigues(ry @ rx @ rz)
    projected, _ = cv2.projectPoints(
        FACE_MODEL_MM, rvec, np.array([0.0, 0.0, distance_mm]), camera_matrix(image_size), np.zeros(4)
    )
    return projected.reshape(5, 2)


@dataclass(frozen=True)
class Attention:
    score: float  # 1 = 正对屏幕；随角度增大、无人脸而下降
    confidence: float
    pose: HeadPose | None


def attention_from_pose(
    pose: HeadPose | None, face_score: float | None, eye_dist_px: float, free_deg: float = 15.0, zero_deg: float = 45.0
) -> Attention:
    """偏转角 ``sqrt(yaw² + pitch²)`` 在 ``free_deg`` 内得 1，到 ``zero_deg`` 线性降到 0。

    置信度：检测分数 × 拟合程度（重投影误差相对眼距越大越低）；没有人脸时专注度为 0、置信度 0.6
    （正脸检测召回率高，但大角度转头本身也会导致检测不到）。
    """
    if pose is None or face_score is None:
        return Attention(score=0.0, confidence=0.6, pose=None)
    angle = math.hypot(pose.yaw, pose.pitch)
    score = 1.0 - min(1.0, max(0.0, angle - free_deg) / (zero_deg - free_deg))
    fit = math.exp(-pose.reprojection_px / max(1.0, 0.2 * eye_dist_px))
    return Attention(score=round(score, 3), confidence=round(face_score * fit, 3), pose=pose)
