"""遮挡比例：把人脸按两眼对齐到标准小图，逐格比较纹理（梯度能量）与本人未遮挡时的参考，变化的格子占比即遮挡比例。

- 只用两眼定位（遮住口鼻时眼睛仍可见）；亮度按眼部横带归一化，对整体光照变化不敏感；
- 手、纸、口罩等遮挡物把五官的边缘（嘴唇、鼻翼、下颌线）盖住：该格梯度能量骤降；有纹理的遮挡物则骤升；
  两眼定位的小幅误差只会平移边缘，不改变格内能量，因此不误报；
- 只统计脸部的中间 4 列（外侧两列多为头发与背景）；
- 参考取人脸出现后的前几帧，之后只在几乎无遮挡时缓慢更新；头部明显偏转时返回 None。
"""

from __future__ import annotations

import cv2
import numpy as np

SIZE = 48  # 标准人脸小图边长
CELLS = 6  # 6x6 格
FACE_COLUMNS = slice(1, 5)
# 标准图中两眼的位置（右眼在图像左侧）
CANONICAL_EYES = np.array([[0.32 * SIZE, 0.30 * SIZE], [0.68 * SIZE, 0.30 * SIZE]], dtype=np.float32)


def align_face(gray: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """以两眼为锚点的相似变换，把人脸（额头到下巴）变换到 SIZE x SIZE 的 float32 小图。"""
    src = np.asarray(landmarks[:2], dtype=np.float32)
    matrix, _ = cv2.estimateAffinePartial2D(src, CANONICAL_EYES)
    if matrix is None:
        raise ValueError("无法由两眼对齐人脸")
    warped = cv2.warpAffine(gray, matrix, (SIZE, SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return warped.astype(np.float32)


def cell_energy(patch: np.ndarray) -> np.ndarray:
    """按眼部横带归一化亮度后，每格的平均梯度幅值（CELLS x CELLS）。"""
    band = patch[int(0.2 * SIZE) : int(0.42 * SIZE)]
    norm = (patch - band.mean()) / max(4.0, float(band.std()))
    grad = np.hypot(cv2.Sobel(norm, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(norm, cv2.CV_32F, 0, 1, ksize=3))
    step = SIZE // CELLS
    return grad.reshape(CELLS, step, CELLS, step).mean(axis=(1, 3))


class OcclusionEstimator:
    def __init__(
        self, low: float = 0.35, high: float = 3.0, floor: float = 0.15, warmup: int = 5, adapt: float = 0.05
    ) -> None:
        self.low, self.high, self.floor = low, high, floor
        self.warmup = warmup
        self.adapt = adapt
        self._reference: np.ndarray | None = None
        self._seen = 0

    def reset(self) -> None:
        self._reference = None
        self._seen = 0

    def update(self, gray: np.ndarray, landmarks: np.ndarray, frontal: bool = True) -> float | None:
        """返回 0..1 的遮挡比例；参考尚未建立或头部明显偏转时返回 None。"""
        if not frontal:
            return None
        energy = cell_energy(align_face(gray, landmarks))
        if self._seen < self.warmup:
            self._seen += 1
            ref = self._reference
            self._reference = energy if ref is None else ref + (energy - ref) / self._seen
            return None if self._seen < self.warmup else 0.0
        assert self._reference is not None
        ratio = energy / np.maximum(self._reference, self.floor)
        changed = ((ratio < self.low) | (ratio > self.high))[:, FACE_COLUMNS]
        occluded = float(changed.mean())
        if occluded < 0.1:
            self._reference += self.adapt * (energy - self._reference)
        return round(occluded, 3)
