"""音频活动：电平（dBFS，用于监控页电平表，从不回放内容）与语音活动（webrtcvad）-> 说话比例。

输入为 16 kHz 单声道 int16 PCM（拉流线程用 PyAV 解码、重采样后送入），按 30 ms 帧处理。
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

SAMPLE_RATE = 16000
FRAME_MS = 30
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
SILENCE_DBFS = -96.0


def dbfs(pcm: np.ndarray) -> float:
    """int16 样本的 RMS 电平（相对满幅，dBFS）。"""
    if len(pcm) == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean((pcm.astype(np.float64) / 32768.0) ** 2)))
    return max(SILENCE_DBFS, 20.0 * np.log10(rms)) if rms > 0 else SILENCE_DBFS


@dataclass(frozen=True)
class AudioState:
    level_dbfs: float | None  # 最近 0.3 秒的电平
    speech_ratio: float  # 最近 ``window_s`` 内判为语音的帧比例
    talking: bool


class AudioActivity:
    """``add`` 接收任意长度的 PCM，内部按 30 ms 帧做 VAD；``state`` 给出当前电平与说话判定。

    过静的帧（低于 ``min_dbfs``）直接判为非语音：webrtcvad 对极低电平的噪声偶有误判。
    """

    def __init__(
        self, aggressiveness: int = 2, window_s: float = 1.0, talking_ratio: float = 0.4, min_dbfs: float = -50.0
    ) -> None:
        self.vad = webrtcvad.Vad(aggressiveness)
        self.talking_ratio = talking_ratio
        self.min_dbfs = min_dbfs
        n = max(1, int(window_s * 1000 / FRAME_MS))
        self._speech: deque[bool] = deque(maxlen=n)
        self._levels: deque[float] = deque(maxlen=max(1, 300 // FRAME_MS))
        self._pending = np.zeros(0, np.int16)

    def add(self, pcm: np.ndarray) -> None:
        data = np.concatenate([self._pending, np.asarray(pcm, dtype=np.int16)])
        usable = len(data) - len(data) % FRAME_SAMPLES
        for start in range(0, usable, FRAME_SAMPLES):
            frame = data[start : start + FRAME_SAMPLES]
            level = dbfs(frame)
            self._levels.append(level)
            loud_enough = level >= self.min_dbfs
            self._speech.append(loud_enough and self.vad.is_speech(frame.tobytes(), SAMPLE_RATE))
        self._pending = data[usable:]

    def state(self) -> AudioState:
        if not self._levels:
            return AudioState(level_dbfs=None, speech_ratio=0.0, talking=False)
        power = np.mean([10 ** (lv / 10) for lv in self._levels])
        ratio = sum(self._speech) / len(self._speech)
        return AudioState(
            level_dbfs=round(float(10 * np.log10(power)), 1),
            speech_ratio=round(ratio, 3),
            talking=ratio >= self.talking_ratio,
        )


class RecentAudio:
    """最近 ``seconds`` 秒的 PCM（供语音情绪按片段分类；只在进程内存里，不落盘、不外发）。"""

    def __init__(self, seconds: float = 3.0) -> None:
        self.capacity = int(seconds * SAMPLE_RATE)
        self._chunks: deque[np.ndarray] = deque()
        self._size = 0

    def add(self, pcm: np.ndarray) -> None:
        self._chunks.append(np.asarray(pcm, dtype=np.int16))
        self._size += len(pcm)
        while self._chunks and self._size - len(self._chunks[0]) >= self.capacity:
            self._size -= len(self._chunks.popleft())

    def clip(self) -> np.ndarray:
        if not self._chunks:
            return np.zeros(0, np.int16)
        return np.concatenate(list(self._chunks))[-self.capacity :]
