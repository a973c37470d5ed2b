"""解码后的一帧，以及只保留最新一帧的槽位（拉流线程放入、分析线程取走）。"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # HxWx3 BGR uint8
    pts_s: float | None  # 流内显示时间戳（秒）
    received_at: float  # time.monotonic()，解码完成时刻
    wall_time: float  # time.time()，解码完成时刻
    key_frame: bool = False  # 编码关键帧（I 帧）

    @property
    def timestamp_s(self) -> float:
        """流内时间：显示时间戳，没有时用解码完成时刻。"""
        return self.pts_s if self.pts_s is not None else self.received_at


class FrameSlot:
    """只保留最新一帧的单槽位；被覆盖而未取走的帧计为丢弃。"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._lock:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame

    def take(self) -> Frame | None:
        with self._lock:
            frame, self._frame = self._frame, None
            return frame
