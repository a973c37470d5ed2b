"""把分析结果组装成公开契约的事件（纯函数），并给出每个事件发往的命名空间与房间。"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import events as ev
from shared.messages import (
    Anomaly,
    AttentionMetrics,
    AudioMetrics,
    EmotionResult,
    FaceMetrics,
    HeartRateEvent,
    HeartRateResult,
    Metrics,
    MonitorUpdate,
    PpgMetrics,
    StreamResultEvent,
    SystemMetrics,
    iso_utc,
)

from .analysis.ppg import PpgResult
from .tracker import StreamTracker


@dataclass(frozen=True)
class Emission:
    event: str
    data: dict[str, Any]
    namespace: str
    room: str | list[str]


def models_ran(emotion_ready: bool, audio: bool, audio_emotion_ready: bool) -> list[str]:
    """本条更新实际运行了的分析器：情绪模型加载完成才列出 emotion，该流有音轨才列出 audio，
    语音情绪模型已加载且有音轨才列出 audio_emotion。"""
    models = ["face", "attention"]
    if emotion_ready:
        models.append("emotion")
    models.append("ppg")
    if audio:
        models.append("audio")
        if audio_emotion_ready:
            models.append("audio_emotion")
    return models


def null_reasons(metrics: Metrics, ppg: PpgResult, has_audio: bool, audio_emotion_ready: bool) -> dict[str, str]:
    """``metrics`` 中每个 null 字段的原因代码（代码含义见 README）。"""
    reasons: dict[str, str] = {}
    face = metrics.face
    if face.occlusion_ratio is None:
        reasons["face.occlusion_ratio"] = "no_face" if not face.detected else "no_frontal_reference"
    if metrics.ppg.signal_quality is None:
        reasons["ppg.signal_quality"] = reasons["ppg.hr_bpm"] = "insufficient_window"
    elif metrics.ppg.hr_bpm is None:
        reasons["ppg.hr_bpm"] = "low_signal_quality"
    audio = metrics.audio
    for name in ("level_dbfs", "speech_ratio", "talking"):
        if getattr(audio, name) is None:
            reasons[f"audio.{name}"] = "no_audio_track" if not has_audio else "insufficient_window"
    if audio.dominant is None:
        if not audio_emotion_ready:
            reason = "audio_emotion_model_not_installed"
        elif not has_audio:
            reason = "no_audio_track"
        else:
            reason = "no_recent_speech"
        reasons["audio.dominant"] = reasons["audio.confidence"] = reason
    return reasons


def build_monitor_update(
    session_id: str,
    tracker: StreamTracker,
    ppg: PpgResult,
    now: float,
    now_wall: float,
    latency_ms: float | None,
    cpu_util: float | None,
    dropped_frames: int,
    emotion_ready: bool,
    audio_emotion_ready: bool = False,
) -> MonitorUpdate:
    """``now``：monotonic 时钟（判断音频是否仍在），``now_wall``：Unix 时间（事件时间戳）。"""
    obs = tracker.latest
    assert obs is not None and tracker.attention is not None
    audio = tracker.audio_state(now)
    speech = tracker.speech_emotion(now) if audio is not None else None
    metrics = Metrics(
        attention=AttentionMetrics(
            score=round(tracker.attention_score, 3) if tracker.attention_score is not None else None,
            confidence=tracker.attention.confidence,
        ),
        face=FaceMetrics(
            detected=obs.faces.detected,
            multi_face_secs=round(tracker.multi_face_secs, 2),
            occlusion_ratio=tracker.occlusion_ratio if obs.faces.detected else None,
        ),
        ppg=PpgMetrics(
            hr_bpm=ppg.hr_bpm,
            signal_quality=ppg.signal_quality,
            source=ppg.source if ppg.signal_quality is not None else None,
        ),
        audio=AudioMetrics(
            dominant=speech.dominant if speech else None,
            confidence=speech.confidence if speech else None,
            level_dbfs=audio.level_dbfs if audio else None,
            speech_ratio=audio.speech_ratio if audio else None,
            talking=audio.talking if audio else None,
        ),
    )
    return MonitorUpdate(
        session_id=session_id,
        timestamp=iso_utc(now_wall),
        models=models_ran(emotion_ready, audio is not None, audio_emotion_ready),
        metrics=metrics,
        anomalies=[Anomaly(code=a.code, severity=a.severity, duration_ms=a.duration_ms) for a in tracker.active],
        latency_ms=latency_ms,
        system=SystemMetrics(gpu_util=None, cpu_util=cpu_util, dropped_frames=dropped_frames),
        null_reasons=null_reasons(metrics, ppg, audio is not None, audio_emotion_ready),
    )


def build_emotion_event(session_id: str, stream_name: str, tracker: StreamTracker) -> StreamResultEvent:
    obs = tracker.latest
    assert obs is not None
    emotion = tracker.emotion
    result = EmotionResult(
        face_detected=obs.faces.detected,
        face_count=obs.faces.count,
        dominant_emotion=emotion.dominant if emotion else None,
        confidence=emotion.confidence if emotion else None,
        emotions=emotion.probabilities if emotion else None,
    )
    return StreamResultEvent(
        session_id=session_id, stream_name=stream_name, result=result, video_timestamp=round(obs.frame_wall_time, 3)
    )


def build_heart_rate_event(session_id: str, stream_name: str, tracker: StreamTracker, ppg: PpgResult) -> HeartRateEvent:
    obs = tracker.latest
    assert obs is not None
    return HeartRateEvent(
        session_id=session_id,
        stream_name=stream_name,
        result=HeartRateResult(
            hr_bpm=ppg.hr_bpm,
            signal_quality=ppg.signal_quality,
            face_detected=obs.faces.detected,
            window_s=ppg.window_s,
            source=ppg.source if ppg.signal_quality is not None else None,
        ),
        video_timestamp=round(obs.frame_wall_time, 3),
    )


def route(
    stream_name: str, update: MonitorUpdate, emotion: StreamResultEvent, heart_rate: HeartRateEvent | None = None
) -> list[Emission]:
    """事件路由：

    - ``monitor.update``：/monitor 的全部未收窄连接与该流房间；默认命名空间中该流房间；
    - ``video_emotion_result`` / ``rtsp_video_analysis``（及心率的 ``heart_rate_result`` /
      ``rtsp_heart_rate_analysis``）：两个命名空间的全部未收窄连接与该流房间；
    - ``student.emotion`` / ``student.heart_rate``：两个命名空间中该流房间。
    """
    room = ev.stream_room(stream_name)
    both = [ev.ALL_ROOM, room]
    update_data = update.model_dump(mode="json")
    out = [
        Emission(ev.MONITOR_UPDATE, update_data, ev.NS_MONITOR, both),
        Emission(ev.MONITOR_UPDATE, update_data, ev.NS_DEFAULT, room),
    ]
    families = [(emotion, (ev.VIDEO_EMOTION_RESULT, ev.RTSP_VIDEO_ANALYSIS), ev.STUDENT_EMOTION)]
    if heart_rate is not None:
        families.append((heart_rate, (ev.HEART_RATE_RESULT, ev.RTSP_HEART_RATE_ANALYSIS), ev.STUDENT_HEART_RATE))
    for payload, broadcast_names, room_name in families:
        data = payload.model_dump(mode="json")
        for namespace in ev.NAMESPACES:
            out.extend(Emission(name, data, namespace, both) for name in broadcast_names)
            out.append(Emission(room_name, data, namespace, room))
    return out
