"""音频：espeak-ng 合成的真实语音 -> 2 秒内判为说话（TALKING）；静音与轻微底噪不误报；电平可读；
FunASR emotion2vec 适配层（用替身模型测试）。"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from devtools.synthetic import face_frames, speech_pcm
from tests.helpers import JOB, wait_until
from workers.analysis.audio import FRAME_SAMPLES, SAMPLE_RATE, AudioActivity, dbfs
from workers.analysis.face import FaceDetector
from workers.analysis.ppg import PpgResult
from workers.analysis.speech_emotion import Emotion2vec, SpeechEmotionError, parse_generate_output
from workers.models.speech import SpeechEmotionService
from workers.output.events import build_monitor_update
from workers.state.stream_state import StreamState
from workers.state.vision import Observation

STANDINS = Path(__file__).resolve().parents[1] / "standins"

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


# ---------------- 接入分析状态：TALKING 异常与 monitor.update 的 audio 字段 ----------------


def _speech_timeline() -> tuple[np.ndarray, float]:
    """3 秒底噪 + 语音 + 3 秒底噪；返回 (PCM, 语音起点秒)。"""
    rng = np.random.default_rng(1)
    speech = speech_pcm("请大家保持安静，考试现在开始，不要交头接耳。")
    noise = rng.normal(0, 30, 3 * SAMPLE_RATE).astype(np.int16)
    return np.concatenate([noise, speech, noise]), 3.0


def test_tracker_reports_talking_within_two_seconds_and_fills_audio_metrics() -> None:
    pcm, onset = _speech_timeline()
    faces = FaceDetector().detect(next(face_frames(1)))
    tracker = StreamState(publish_interval_s=0.4, analysis_interval_s=0.2)
    ppg = PpgResult(hr_bpm=None, signal_quality=None, snr_db=None, window_s=1.0)
    first_talking, updates = None, []
    step = SAMPLE_RATE // 10
    for i, start in enumerate(range(0, len(pcm), step)):
        t = (start + step) / SAMPLE_RATE
        tracker.audio.sample(pcm[start : start + step], now=t)
        if i % 2 == 1:  # 5 fps 分析
            tracker.observe(Observation(faces=faces, frame_received_at=t, frame_wall_time=1.7e9 + t), t)
            update = build_monitor_update(JOB, tracker.snapshot(t, ppg), 1.7e9 + t, None, None, 0, emotion_ready=False)
            updates.append((t, update))
            if first_talking is None and any(a.code == "TALKING" for a in update.anomalies):
                first_talking = t
    assert first_talking is not None and onset < first_talking <= onset + 2.0, first_talking
    quiet = [u for t, u in updates if t < onset]
    assert all(not u.anomalies and u.metrics.audio.talking is False for u in quiet)
    assert all(u.metrics.audio.level_dbfs is not None and u.metrics.audio.level_dbfs < -50 for u in quiet)
    last = updates[-1][1]
    assert last.models == ["face", "attention", "ppg", "audio"]
    # 没有语音情绪模型：dominant/confidence 为 null 并给出原因
    assert last.metrics.audio.dominant is None
    assert last.null_reasons["audio.dominant"] == "audio_emotion_model_not_installed"
    assert last.null_reasons["ppg.hr_bpm"] == "insufficient_window"
    # 音频停止超过 2 秒：视为无音轨，电平为 null 并说明原因
    late = updates[-1][0] + 3.0
    tracker.observe(Observation(faces=faces, frame_received_at=late, frame_wall_time=1.7e9 + late), late)
    gone = build_monitor_update(JOB, tracker.snapshot(late, ppg), 1.7e9 + late, None, None, 0, emotion_ready=False)
    assert gone.metrics.audio.level_dbfs is None and gone.null_reasons["audio.level_dbfs"] == "no_audio_track"
    assert "audio" not in gone.models


# ---------------- FunASR emotion2vec 适配层（替身模型） ----------------


def _stand_in_model(tmp_path: Path) -> Emotion2vec:
    """用 tests/standins/funasr 的替身 AutoModel（不是真实模型）经真实的加载路径构造适配层。"""
    sys.path.insert(0, str(STANDINS))
    try:
        (tmp_path / "configuration.json").write_text("{}")
        return Emotion2vec.load(str(tmp_path))
    finally:
        sys.path.remove(str(STANDINS))
        sys.modules.pop("funasr", None)


def test_emotion2vec_adapter_with_stand_in_model(tmp_path: Path) -> None:
    model = _stand_in_model(tmp_path)
    assert getattr(sys.modules.get(type(model.model).__module__), "STAND_IN", True)
    speech = speech_pcm("今天的考试题目很简单。")
    result = model.classify(speech)
    assert result is not None and result.dominant == "happy" and result.confidence > 0.5
    assert "unuse_0" not in result.scores and "other" not in result.scores and "neutral" in result.scores
    assert model.classify(speech[: SAMPLE_RATE // 2]) is None  # 太短不分类
    assert model.model.calls == 1


def test_emotion2vec_load_errors_say_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(SpeechEmotionError, match="README"):
        Emotion2vec.load(str(tmp_path / "missing"))
    (tmp_path / "configuration.json").write_text("{}")
    with pytest.raises(SpeechEmotionError, match=r"audio-emotion"):
        Emotion2vec.load(str(tmp_path))  # 目录对，但没有安装 funasr


def test_parse_generate_output_skips_placeholder_labels() -> None:
    out = [{"labels": ["生气/angry", "unuse_0", "<unk>", "难过/sad"], "scores": [0.2, 0.7, 0.05, 0.05]}]
    result = parse_generate_output(out)
    assert result is not None and result.dominant == "angry" and set(result.scores) == {"angry", "sad"}
    assert parse_generate_output([]) is None
    assert parse_generate_output([{"labels": ["unuse_1"], "scores": [1.0]}]) is None


def test_speech_emotion_service_fills_audio_dominant(tmp_path: Path) -> None:
    model = _stand_in_model(tmp_path)
    service = SpeechEmotionService(str(tmp_path), loader=lambda _: model)
    service.start()
    try:
        wait_until(lambda: service.ready, 5, "替身模型未加载")
        pcm, onset = _speech_timeline()
        faces = FaceDetector().detect(next(face_frames(1)))
        tracker = StreamState(publish_interval_s=0.4, analysis_interval_s=0.2)
        t = 0.0
        for start in range(0, int((onset + 3.0) * SAMPLE_RATE), SAMPLE_RATE // 10):
            t = (start + SAMPLE_RATE // 10) / SAMPLE_RATE
            tracker.audio.sample(pcm[start : start + SAMPLE_RATE // 10], now=t)
            clip = tracker.audio.speech_clip_due(t)
            if clip is not None:
                assert service.submit(clip, lambda r, t=t: tracker.audio.set_speech_emotion(r, now=t))
        wait_until(lambda: tracker.audio.speech_emotion(t) is not None, 5, "语音情绪结果未返回")
        tracker.observe(Observation(faces=faces, frame_received_at=t, frame_wall_time=1.7e9 + t), t)
        ppg = PpgResult(hr_bpm=None, signal_quality=None, snr_db=None, window_s=1.0)
        update = build_monitor_update(JOB, tracker.snapshot(t, ppg), 1.7e9 + t, None, None, 0, False, audio_emotion_ready=True)
        assert update.metrics.audio.dominant == "happy" and update.models[-2:] == ["audio", "audio_emotion"]
        assert "audio.dominant" not in update.null_reasons
    finally:
        service.stop()
