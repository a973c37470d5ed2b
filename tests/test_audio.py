"""音频活动：espeak-ng 合成的真实语音 -> 2 秒内判为说话；静音与轻微底噪不误报；电平可读。"""

from __future__ import annotations

import numpy as np

from workers.analysis.audio import FRAME_SAMPLES, SAMPLE_RATE, AudioActivity, dbfs
from workers.synthetic import speech_pcm

CHUNK = SAMPLE_RATE // 10  # 拉流时每次送入约 100 ms


def feed(activity: AudioActivity, pcm: np.ndarray, t0: float) -> list[tuple[float, bool, float | None]]:
    timeline = []
    for start in range(0, len(pcm), CHUNK):
        activity.add(pcm[start : start + CHUNK])
        state = activity.state()
        timeline.append((t0 + (start + CHUNK) / SAMPLE_RATE, state.talking, state.level_dbfs))
    return timeline


def test_speech_is_talking_within_two_seconds_and_silence_is_not() -> None:
    rng = np.random.default_rng(0)
    silence = (rng.normal(0, 30, 3 * SAMPLE_RATE)).astype(np.int16)  # 约 -60 dBFS 的底噪
    speech = np.concatenate([speech_pcm("请大家保持安静，考试现在开始，不要交头接耳。")] * 2)
    activity = AudioActivity()
    quiet = feed(activity, silence, 0.0)
    talking = feed(activity, speech, 3.0)
    assert not any(t for _, t, _ in quiet), "静音/底噪不应判为说话"
    onset = next((ts for ts, t, _ in talking if t), None)
    assert onset is not None and onset - 3.0 <= 2.0
    assert sum(t for _, t, _ in talking) >= 0.6 * len(talking)
    levels = [lv for _, _, lv in quiet]
    assert all(lv is not None and lv < -50 for lv in levels)
    assert max(lv for _, _, lv in talking if lv is not None) > -35
    after = feed(activity, silence, 3.0 + len(speech) / SAMPLE_RATE)
    assert not after[-1][1], "说话停止后恢复为非说话"


def test_level_and_framing() -> None:
    full_scale = np.full(FRAME_SAMPLES, 32767, np.int16)
    assert abs(dbfs(full_scale)) < 0.01 and dbfs(np.zeros(10, np.int16)) == -96.0
    activity = AudioActivity()
    assert activity.state().level_dbfs is None
    activity.add(np.zeros(FRAME_SAMPLES - 1, np.int16))  # 不足一帧：先缓存
    assert activity.state().level_dbfs is None
    activity.add(np.zeros(1, np.int16))
    assert activity.state().level_dbfs == -96.0
