"""把分析结果组装成公开契约的事件（纯函数），并给出每个事件发往的命名空间与房间。"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import events as ev
from shared.messages import (
    Anomaly,
    AttentionMetrics,
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


def models_ran(emotion_ready: bool) -> list[str]:
    """本进程实际运行的分析器（音频分析尚未实现，不列出）。"""
    models = ["face", "attention", "ppg"]
    if emotion_ready:
        models.insert(2, "emotion")
    return models


def build_monitor_update(
    session_id: str,
    tracker: StreamTracker,
    ppg: PpgResult,
    now_wall: float,
    latency_ms: float | None,
    cpu_util: float | None,
    dropped_frames: int,
    emotion_ready: bool,
) -> MonitorUpdate:
    obs = tracker.latest
    assert obs is not None and tracker.attention is not None
    return MonitorUpdate(
        session_id=session_id,
        timestamp=iso_utc(now_wall),
        models=models_ran(emotion_ready),
        metrics=Metrics(
            attention=AttentionMetrics(
                score=round(tracker.attention_score, 3) if tracker.attention_score is not None else None,
                confidence=tracker.attention.confidence,
            ),
            face=FaceMetrics(
                detected=obs.faces.detected,
                multi_face_secs=round(tracker.multi_face_secs, 2),
                occlusion_ratio=tracker.occlusion_ratio if obs.faces.detected else None,
            ),
            ppg=PpgMetrics(hr_bpm=ppg.hr_bpm, signal_quality=ppg.signal_quality),
        ),
        anomalies=[Anomaly(code=a.code, severity=a.severity, duration_ms=a.duration_ms) for a in tracker.active],
        latency_ms=latency_ms,
        system=SystemMetrics(gpu_util=None, cpu_util=cpu_util, dropped_frames=dropped_frames),
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
            hr_bpm=ppg.hr_bpm, signal_quality=ppg.signal_quality, face_detected=obs.faces.detected, window_s=ppg.window_s
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
