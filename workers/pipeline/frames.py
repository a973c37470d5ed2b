"""解码后的一帧（解码器原样的 I420 平面），以及只保留最新一帧的槽位（拉流线程每帧放入、分析线程到点时取走）。

拉流线程不做整帧颜色转换：rPPG 采样直接读平面里采样框那一小块（``SkinSampler.sample_i420``），
只有真正被分析的帧（默认每 3 帧 1 帧）才在分析线程里转成 BGR（``Frame.bgr``，OpenCV 转换时释放 GIL）。
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np


@dataclass(frozen=True)
class Frame:
    i420: np.ndarray  # (H*3/2, W) uint8：Y 平面，随后 U、V 平面（各 H/2 x W/2），BT.601 有限范围
    pts_s: float | None  # 流内显示时间戳（秒）
    received_at: float  # time.monotonic()，解码完成时刻
    wall_time: float  # time.time()，解码完成时刻
    key_frame: bool = False  # 编码关键帧（I 帧）

    @cached_property
    def bgr(self) -> np.ndarray:
        """HxWx3 BGR uint8（首次访问时转换，之后复用）。"""
        return cv2.cvtColor(self.i420, cv2.COLOR_YUV2BGR_I420)

    @property
    def timestamp_s(self) -> float:
        """流内时间：显示时间戳，没有时用解码完成时刻。"""
        return self.pts_s if self.pts_s is not None else self.received_at


class FrameSlot:
    """只保留最新一帧的单槽位：拉流线程每帧覆盖，分析线程到点时取走（取走的总是最新的）。

    ``due_at``（monotonic）由分析线程在取走一帧后写入（``schedule``）：下一次分析的时刻。``put`` 返回这一帧
    是否已到点，拉流线程据此唤醒分析线程，于是被分析的总是刚解码出来的帧，各路流也按各自帧到达的相位错开。
    ``ready_at``：到点后第一帧到达的时刻（还没有时 None），分析线程据此知道自己晚了多久。"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self.due_at = 0.0
        self.ready_at: float | None = None

    def put(self, frame: Frame) -> bool:
        due = frame.received_at >= self.due_at
        with self._lock:
            self._frame = frame
            if due and self.ready_at is None:
                self.ready_at = frame.received_at
        return due

    def schedule(self, due_at: float) -> None:
        with self._lock:
            self.due_at, self.ready_at = due_at, None

    def take(self) -> Frame | None:
        with self._lock:
            frame, self._frame = self._frame, None
            return frame
