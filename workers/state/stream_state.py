"""每路流一个的分析状态：把视觉、心率、音频、节流几个部件组合起来，判定异常，并给出不可变的快照。

线程：拉流线程写 ``pulse.add_frame`` / ``audio.sample``，学生端样本读取线程写 ``pulse.add_client_samples``，
其余（``observe``、节流、``snapshot``）都在分析线程。
"""

from __future__ import annotations

from ..analysis.anomalies import DEFAULT_POLICIES, ActiveAnomaly, AnomalyPolicy, AnomalyTracker
from ..analysis.attention import GazeRule
from ..analysis.head_pose import HeadPoseEstimator
from ..analysis.identity import IdentityTracker
from ..analysis.ppg import PpgResult
from .audio import AudioTrack
from .pulse import PulseState, Roi
from .rates import RateMeter
from .snapshot import StreamSnapshot
from .throttle import PublishThrottle
from .vision import Observation, VisionState


class StreamState:
    def __init__(
        self,
        publish_interval_s: float,
        analysis_interval_s: float,
        policies: dict[str, AnomalyPolicy] | None = None,
        gaze: GazeRule | None = None,
        occlusion_threshold: float = 0.3,
        pose_estimator: HeadPoseEstimator | None = None,
        identity: IdentityTracker | None = None,
        preview_interval_s: float = 15.0,
    ) -> None:
        self.vision = VisionState(pose_estimator or HeadPoseEstimator(), gaze, occlusion_threshold, identity)
        self.pulse = PulseState()
        self.audio = AudioTrack()
        self.throttle = PublishThrottle(publish_interval_s, analysis_interval_s, preview_interval_s)
        self.anomalies = AnomalyTracker(dict(policies or DEFAULT_POLICIES))
        self.active: list[ActiveAnomaly] = []
        self.frames_analyzed = 0
        self.analysis_meter = RateMeter()

    def observe(self, obs: Observation, now: float) -> None:
        """并入一次分析结果：更新各部件，按全部条件推进异常状态机。"""
        self.frames_analyzed += 1
        self.analysis_meter.mark(now)
        self.pulse.follow_face(obs.main_face, obs.faces.image_size)
        conditions = self.vision.observe(obs)
        audio = self.audio.current(now)
        conditions["TALKING"] = audio is not None and audio.talking
        self.active = self.anomalies.update(conditions, obs.frame_received_at)

    @property
    def multi_face_secs(self) -> float:
        return self.vision.multi_face_secs

    @property
    def attention_score(self) -> float | None:
        return self.vision.attention_score

    def publish_due(self, now: float) -> bool:
        return self.throttle.publish_due(now)

    def mark_published(self, now: float) -> float:
        """记录一次推送，返回端内延迟（所分析帧解码完成 -> 推送，毫秒）。"""
        assert self.vision.latest is not None
        return self.throttle.mark_published(now, self.vision.latest.frame_received_at)

    def roi_due(self, now: float) -> tuple[int, Roi | None] | None:
        latest = self.vision.latest
        return self.pulse.roi_due(now, latest.faces.image_size if latest is not None else None)

    def snapshot(self, now: float, ppg: PpgResult | None = None) -> StreamSnapshot:
        """此刻的状态（至少分析过一帧之后）；``ppg`` 未给出时现算当前心率。"""
        obs, attention = self.vision.latest, self.vision.attention
        assert obs is not None and attention is not None
        audio = self.audio.current(now)
        return StreamSnapshot(
            face_detected=obs.faces.detected,
            face_count=obs.faces.count,
            frame_wall_time=obs.frame_wall_time,
            attention_score=self.vision.attention_score,
            attention_confidence=attention.confidence,
            multi_face_secs=self.vision.multi_face_secs,
            occlusion_ratio=self.vision.occlusion_ratio,
            identity_distance=self.vision.identity.distance,
            identity_reference=self.vision.identity.source,
            emotion=self.vision.emotion,
            ppg=self.pulse.heart_rate(now) if ppg is None else ppg,
            audio=audio,
            speech_emotion=self.audio.speech_emotion(now) if audio is not None else None,
            anomalies=tuple(self.active),
            risk=self.anomalies.risk(obs.frame_received_at),  # 与异常状态机同一时钟（所分析帧的到达时刻）
        )
