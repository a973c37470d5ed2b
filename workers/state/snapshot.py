"""一路流此刻的状态（不可变）：事件组装只读它，不再伸手进各个状态部件。"""

from __future__ import annotations

from dataclasses import dataclass

from shared.api import IdentityReference
from shared.risk import Risk

from ..analysis.anomalies import ActiveAnomaly
from ..analysis.audio import AudioState
from ..analysis.emotion import EmotionEstimate
from ..analysis.ppg import PpgResult
from ..analysis.speech_emotion import SpeechEmotion


@dataclass(frozen=True)
class StreamSnapshot:
    face_detected: bool
    face_count: int
    frame_wall_time: float  # 所分析帧的解码时刻（Unix 秒）
    attention_score: float | None  # 平滑后
    attention_confidence: float
    multi_face_secs: float
    occlusion_ratio: float | None
    identity_distance: float | None  # 最近一次身份比对的描述子距离（还没登记时 None）
    identity_reference: IdentityReference | None  # 比对基准
    emotion: EmotionEstimate | None  # 平滑后的面部情绪
    ppg: PpgResult
    audio: AudioState | None  # None：没有音轨
    speech_emotion: SpeechEmotion | None  # 只在有音轨时给出
    anomalies: tuple[ActiveAnomaly, ...]
    risk: Risk
