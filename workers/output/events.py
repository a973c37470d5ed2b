"""把一路流的快照组装成公开契约的事件（纯函数）。事件发往哪里见 ``routing``。"""

from __future__ import annotations

from shared.api import StreamJob
from shared.messages import (
    Anomaly,
    AttentionMetrics,
    AudioMetrics,
    EmotionMetrics,
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

from ..analysis.ppg import PpgResult
from ..pipeline.pacing import AnalysisPacer
from ..state.snapshot import StreamSnapshot


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


def null_reasons(
    metrics: Metrics, ppg: PpgResult, has_audio: bool, audio_emotion_ready: bool, emotion_ready: bool
) -> dict[str, str]:
    """``metrics`` 中每个 null 字段的原因代码（代码含义见 README）。"""
    reasons: dict[str, str] = {}
    face = metrics.face
    if face.occlusion_ratio is None:
        reasons["face.occlusion_ratio"] = "no_face" if not face.detected else "no_frontal_reference"
    if face.identity_distance is None:
        reasons["face.identity_distance"] = "identity_not_enrolled"
    if metrics.emotion.dominant is None:
        reason = "emotion_model_loading" if not emotion_ready else "no_face" if not face.detected else "insufficient_window"
        reasons["emotion.dominant"] = reasons["emotion.confidence"] = reason
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


def metrics_of(snap: StreamSnapshot) -> Metrics:
    audio, speech, ppg = snap.audio, snap.speech_emotion, snap.ppg
    return Metrics(
        attention=AttentionMetrics(
            score=round(snap.attention_score, 3) if snap.attention_score is not None else None,
            confidence=snap.attention_confidence,
        ),
        face=FaceMetrics(
            detected=snap.face_detected,
            multi_face_secs=round(snap.multi_face_secs, 2),
            occlusion_ratio=snap.occlusion_ratio if snap.face_detected else None,
            identity_distance=None if snap.identity_distance is None else round(snap.identity_distance, 3),
            identity_reference=snap.identity_reference,
        ),
        emotion=EmotionMetrics(
            dominant=snap.emotion.dominant if snap.emotion else None,
            confidence=snap.emotion.confidence if snap.emotion else None,
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


def build_monitor_update(
    job: StreamJob,
    snap: StreamSnapshot,
    now_wall: float,
    latency_ms: float | None,
    cpu_util: float | None,
    dropped_frames: int,
    emotion_ready: bool,
    audio_emotion_ready: bool = False,
    gpu_util: float | None = None,
    pacer: AnalysisPacer | None = None,
    worker: str | None = None,
) -> MonitorUpdate:
    """``now_wall``：Unix 时间（事件时间戳）。"""
    metrics = metrics_of(snap)
    has_audio = snap.audio is not None
    return MonitorUpdate(
        session_id=job.session_id,
        stream_name=job.stream_name,
        exam_id=job.exam_id,
        student_id=job.student_id,
        risk=snap.risk,
        timestamp=iso_utc(now_wall),
        models=models_ran(emotion_ready, has_audio, audio_emotion_ready),
        metrics=metrics,
        anomalies=[Anomaly(code=a.code, severity=a.severity, duration_ms=a.duration_ms) for a in snap.anomalies],
        latency_ms=latency_ms,
        system=SystemMetrics(
            worker=worker,
            gpu_util=gpu_util,
            cpu_util=cpu_util,
            dropped_frames=dropped_frames,
            degraded=pacer is not None and pacer.degraded,
            analysis_fps=None if pacer is None else round(pacer.fps, 2),
        ),
        null_reasons=null_reasons(metrics, snap.ppg, has_audio, audio_emotion_ready, emotion_ready),
    )


def build_emotion_event(session_id: str, stream_name: str, snap: StreamSnapshot) -> StreamResultEvent:
    emotion = snap.emotion
    result = EmotionResult(
        face_detected=snap.face_detected,
        face_count=snap.face_count,
        dominant_emotion=emotion.dominant if emotion else None,
        confidence=emotion.confidence if emotion else None,
        emotions=emotion.probabilities if emotion else None,
    )
    return StreamResultEvent(
        session_id=session_id, stream_name=stream_name, result=result, video_timestamp=round(snap.frame_wall_time, 3)
    )


def build_heart_rate_event(session_id: str, stream_name: str, snap: StreamSnapshot) -> HeartRateEvent:
    ppg = snap.ppg
    return HeartRateEvent(
        session_id=session_id,
        stream_name=stream_name,
        result=HeartRateResult(
            hr_bpm=ppg.hr_bpm,
            signal_quality=ppg.signal_quality,
            face_detected=snap.face_detected,
            window_s=ppg.window_s,
            source=ppg.source if ppg.signal_quality is not None else None,
        ),
        video_timestamp=round(snap.frame_wall_time, 3),
    )
