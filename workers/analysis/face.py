"""人脸检测（libfacedetection / YuNet 系列，yuface 轮子内置权重，离线可用）。

输出每张脸的框、置信度与 5 个关键点（右眼、左眼、鼻尖、右嘴角、左嘴角；“右”指被拍者的右侧）。

libfacedetection 经 ctypes 直接调用（:class:`LibFaceDetection`），不经 yuface 自带的 Python 扩展：那个扩展每次
检测都 ``malloc`` 一块 36 KB 的结果缓冲区而不释放（每路 5 fps 时每分钟漏约 11 MB）；这里每个检测器复用一块缓冲区，
调用期间还释放 GIL（拉流线程照常运行）。
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yuface


class LibFaceDetection:
    """yuface 轮子里的 ``libfacedetection.so``：``detect(bgr)`` -> (N, 16) int16，每行为
    [置信度 0..100, x, y, w, h, 5 个关键点的 x, y, 未用]。同一实例只能在一个线程里使用（共用结果缓冲区）。"""

    BUFFER_BYTES = 0x9000  # libfacedetection 的 DETECT_BUFFER_SIZE：[人脸数 int32][每张脸 16 个 int16]...
    SYMBOL = "_Z14facedetect_cnnPhS_iii"  # int* facedetect_cnn(unsigned char* result, unsigned char* bgr, int w, int h, int step)

    def __init__(self) -> None:
        # 与 yuface 扩展链接的是同一个文件（已随 import yuface 载入，连同它的 libgomp）
        lib = ctypes.CDLL(str(Path(yuface.__file__).parent / "libfacedetection.so.v0.0.3"))
        self._detect = getattr(lib, self.SYMBOL)
        self._detect.restype = ctypes.c_void_p
        self._detect.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._buffer = np.zeros(self.BUFFER_BYTES, np.uint8)

    def detect(self, bgr: np.ndarray) -> np.ndarray:
        image = np.ascontiguousarray(bgr)
        height, width = image.shape[:2]
        self._detect(self._buffer.ctypes.data, image.ctypes.data, width, height, image.strides[0])
        count = int(self._buffer[:4].view(np.int32)[0])
        count = min(count, (self.BUFFER_BYTES - 4) // 32)
        return self._buffer[4 : 4 + 32 * count].view(np.int16).reshape(count, 16).copy()


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


Region = tuple[int, int, int, int]  # x0, y0, x1, y1（原图像素，右下不含）


class FaceDetector:
    """把图像（或其中一块 ``region``）缩放到 ``detect_width`` 对应的比例后检测，再把坐标换算回原图。

    整幅与局部用同一比例：同一张脸在两种检测里大小一样，结果一致（局部检测只是省去其余像素）。
    同一实例只在一个线程里使用（分析线程）。
    """

    MIN_REGION = 64  # 局部检测的最小边长（检测比例下的像素），太小的块里网络看不出整张脸

    def __init__(self, detect_width: int = 320, min_score: float = 0.6) -> None:
        self.detect_width = detect_width
        self.min_score = min_score
        self._lib = LibFaceDetection()

    def detect(self, image_bgr: np.ndarray, region: Region | None = None) -> FaceDetections:
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ValueError("需要 HxWx3 的 uint8 BGR 图像")
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self.detect_width / width)
        x0, y0, x1, y1 = self._clip(region, width, height, scale) if region is not None else (0, 0, width, height)
        small = image_bgr[y0:y1, x0:x1]
        if scale < 1.0:
            size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
            small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
        rows = self._lib.detect(small)
        rows = rows[rows[:, 0] > self.min_score * 100]
        offset = np.array([x0, y0], np.float32)
        faces = []
        for conf, box, marks in zip(rows[:, 0], rows[:, 1:5], rows[:, 5:15]):
            bx, by, bw, bh = (float(v) / scale for v in box)
            points = marks.astype(np.float32).reshape(5, 2) / scale + offset
            faces.append(Face(box=(bx + x0, by + y0, bw, bh), score=float(conf) / 100.0, landmarks=points))
        faces.sort(key=lambda f: f.area, reverse=True)
        return FaceDetections(faces=tuple(faces), image_size=(width, height))

    def _clip(self, region: Region, width: int, height: int, scale: float) -> Region:
        """把块限制在图内，且每边至少 ``MIN_REGION``（检测比例下）。"""
        side = min(self.MIN_REGION / scale, width, height)
        x0, y0, x1, y1 = region
        grow_x, grow_y = max(0.0, side - (x1 - x0)) / 2, max(0.0, side - (y1 - y0)) / 2
        x0, x1 = max(0, int(x0 - grow_x)), min(width, int(x1 + grow_x))
        y0, y1 = max(0, int(y0 - grow_y)), min(height, int(y1 + grow_y))
        return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)
