"""合成测试/演示画面（纯 numpy）：来自 scikit-image 轮子自带的真实人脸照片，不下载任何数据。

- ``face_frames``：真实人脸（skimage.data.astronaut）在室内背景前做小幅头部运动，带相机噪声；
- ``empty_frames``：同一背景前只有一个物体（skimage.data.coffee），没有人脸。
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import cv2
import numpy as np
from skimage import data


def _background(width: int, height: int) -> np.ndarray:
    """浅色墙面：竖直亮度渐变 + 一条桌沿。"""
    ramp = np.linspace(170, 120, height, dtype=np.float32)[:, None]
    bg = np.empty((height, width, 3), np.float32)
    bg[..., 0] = ramp * 0.95
    bg[..., 1] = ramp * 1.0
    bg[..., 2] = ramp * 1.05
    bg[int(height * 0.88) :, :] = (60, 75, 95)
    return bg.clip(0, 255).astype(np.uint8)


@lru_cache(maxsize=4)
def _portrait(height: int) -> np.ndarray:
    """astronaut 照片的头肩部分（BGR），缩放到给定高度。"""
    rgb = data.astronaut()[0:330, 90:400]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = height / bgr.shape[0]
    return cv2.resize(bgr, (round(bgr.shape[1] * scale), height), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=4)
def _object(height: int) -> np.ndarray:
    bgr = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    scale = height / bgr.shape[0]
    return cv2.resize(bgr, (round(bgr.shape[1] * scale), height), interpolation=cv2.INTER_AREA)


def _paste(canvas: np.ndarray, item: np.ndarray, cx: float, top: int) -> None:
    h, w = item.shape[:2]
    x0 = int(round(cx - w / 2))
    x_start, x_end = max(0, x0), min(canvas.shape[1], x0 + w)
    y_end = min(canvas.shape[0], top + h)
    canvas[top:y_end, x_start:x_end] = item[: y_end - top, x_start - x0 : x_end - x0]


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return frame
    noise = rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return (frame.astype(np.float32) + noise).clip(0, 255).astype(np.uint8)


def face_frames(
    count: int, fps: float = 15.0, size: tuple[int, int] = (640, 360), noise: float = 2.0, seed: int = 0
) -> Iterator[np.ndarray]:
    """真实人脸小幅左右/上下移动（周期约 4 秒）。"""
    width, height = size
    rng = np.random.default_rng(seed)
    bg = _background(width, height)
    portrait = _portrait(int(height * 0.92))
    for i in range(count):
        t = i / fps
        frame = bg.copy()
        cx = width / 2 + 8 * np.sin(2 * np.pi * t / 4.0)
        top = int(height * 0.08 + 3 * np.sin(2 * np.pi * t / 3.0))
        _paste(frame, portrait, cx, top)
        yield _noisy(frame, rng, noise)


def empty_frames(
    count: int, fps: float = 15.0, size: tuple[int, int] = (640, 360), noise: float = 2.0, seed: int = 0
) -> Iterator[np.ndarray]:
    """没有人脸的场景：背景与一只咖啡杯。"""
    width, height = size
    rng = np.random.default_rng(seed)
    frame = _background(width, height)
    _paste(frame, _object(int(height * 0.5)), width / 2, int(height * 0.38))
    for _ in range(count):
        yield _noisy(frame, rng, noise)
