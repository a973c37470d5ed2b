"""音频部分的每流状态：电平与语音活动（拉流线程写入）、最近一段语音（供语音情绪分类）与最近的语音情绪结果。"""

from __future__ import annotations

import threading
import time

import numpy as np

from ..analysis.audio import AudioActivity, AudioState, RecentAudio
from ..analysis.speech_emotion import SpeechEmotion


class AudioTrack:
    # 超过该时长没有收到音频即视为无音轨（电平为 null，不判说话）
    STALE_S = 2.0
    # 说话期间每隔该时长取最近一段语音做一次语音情绪分类；结果保留到没有新结果后该时长
    SPEECH_EMOTION_INTERVAL_S = 3.0
    SPEECH_EMOTION_HOLD_S = 10.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._activity = AudioActivity()
        self._recent = RecentAudio(self.SPEECH_EMOTION_INTERVAL_S)
        self._state: AudioState | None = None
        self._at: float | None = None
        self._speech_emotion: SpeechEmotion | None = None
        self._speech_emotion_at: float | None = None
        self._clip_at: float | None = None

    # ---- 拉流线程 ----
    def sample(self, pcm: np.ndarray, now: float | None = None) -> None:
        """每段解码后的 16 kHz 单声道 PCM：电平与语音活动，并保留最近几秒供语音情绪分类。"""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._activity.add(pcm)
            self._recent.add(pcm)
            self._state = self._activity.state()
            self._at = now

    # ---- 分析线程 ----
    def current(self, now: float) -> AudioState | None:
        """当前音频状态；没有音轨（或音频已停止超过 ``STALE_S``）时 None。"""
        if self._at is None or now - self._at > self.STALE_S:
            return None
        return self._state

    def speech_clip_due(self, now: float) -> np.ndarray | None:
        """正在说话且距上次取片段已满间隔时，返回最近一段语音（供语音情绪分类），否则 None。"""
        audio = self.current(now)
        if audio is None or not audio.talking:
            return None
        if self._clip_at is not None and now - self._clip_at < self.SPEECH_EMOTION_INTERVAL_S:
            return None
        self._clip_at = now
        with self._lock:
            return self._recent.clip()

    # ---- 语音情绪线程（结果回调）----
    def set_speech_emotion(self, result: SpeechEmotion | None, now: float | None = None) -> None:
        if result is not None:
            self._speech_emotion = result
            self._speech_emotion_at = time.monotonic() if now is None else now

    def speech_emotion(self, now: float) -> SpeechEmotion | None:
        if self._speech_emotion_at is None or now - self._speech_emotion_at > self.SPEECH_EMOTION_HOLD_S:
            return None
        return self._speech_emotion
