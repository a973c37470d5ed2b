"""每路流一个的分析状态：把各分析器的逐帧结果累积成会话级指标（平滑、累计时长、异常滞回、节流）；不做 I/O。"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from .analysis.anomalies import DEFAULT_POLICIES, ActiveAnomaly, AnomalyPolicy, AnomalyTracker
from .analysis.attention import Attention, HeadPose, attention_from_pose, estimate_head_pose
from .analysis.audio import AudioActivity, AudioState, RecentAudio
from .analysis.emotion import EmotionEstimate, summarize
from .analysis.face import Face, FaceDetections
from .analysis.occlusion import OcclusionEstimator
from .analysis.ppg import PpgResult, PulseMonitor, RppgEstimator
from .analysis.speech_emotion import SpeechEmotion
from .ingest import Frame, RateMeter


@dataclass(frozen=True)
class Observation:
    """一次分析的结果及其所分析帧的时间信息。"""

    faces: FaceDetections
    frame_received_at: float  # monotonic
    frame_wall_time: float  # unix 秒
    emotion: np.ndarray | None = None  # 主人脸的情绪概率（未计算时 None）
    gray: np.ndarray | None = None  # 所分析帧的灰度图（遮挡估计用）


class StreamTracker:
    """累积一路流的分析结果，并决定何时推送。

    只在刚完成一次分析后推送（推送的总是刚分析完的帧，延迟最小）。分析帧到达时刻有抖动，
    因此与上次推送相隔达到 ``publish_interval_s - analysis_interval_s / 2``（且不少于 250ms）即可推送，
    这样 5 fps 分析、400ms 节流时推送间隔稳定在约 400ms，而不会因几毫秒之差拖到 600ms。
    """

    # 两次分析间隔超过该值时不计入 multi_face_secs（断流期间不累积）
    MAX_GAP_S = 2.0
    MIN_PUBLISH_GAP_S = 0.25
    ATTENTION_SMOOTHING = 0.4
    EMOTION_SMOOTHING = 0.5
    HEART_RATE_EVENT_INTERVAL_S = 1.0
    OCCLUSION_SMOOTHING = 0.3
    FRONTAL_YAW_DEG = 25.0
    FRONTAL_PITCH_DEG = 20.0
    FACE_GONE_RESET_S = 2.0
    # 超过该时长没有收到音频即视为无音轨（电平为 null，不判说话）
    AUDIO_STALE_S = 2.0
    # 说话期间每隔该时长取最近一段语音做一次语音情绪分类；结果保留到没有新结果后该时长
    SPEECH_EMOTION_INTERVAL_S = 3.0
    SPEECH_EMOTION_HOLD_S = 10.0
    # 学生端样本超过该时长没有到达即视为停止（改用解码视频的估计）
    CLIENT_PPG_STALE_S = 3.0
    # 采样框没有变化时也每隔该时长重发一次 ppg.roi（学生端重连、重新推流后很快恢复采样）
    ROI_RESEND_S = 2.0

    def __init__(
        self,
        publish_interval_s: float,
        analysis_interval_s: float,
        policies: dict[str, AnomalyPolicy] | None = None,
        look_away_deg: float = 30.0,
        occlusion_threshold: float = 0.3,
    ) -> None:
        self.min_gap_s = max(self.MIN_PUBLISH_GAP_S, publish_interval_s - analysis_interval_s / 2)
        self.look_away_deg = look_away_deg
        self.occlusion_threshold = occlusion_threshold
        self.occlusion = OcclusionEstimator()
        self.occlusion_ratio: float | None = None
        self._face_lost_at: float | None = None
        self.latest: Observation | None = None
        self.frames_analyzed = 0
        self.multi_face_secs = 0.0
        self.analysis_meter = RateMeter()
        self.last_latency_ms: float | None = None
        self.pulse = PulseMonitor()
        self.client_pulse = RppgEstimator()  # 学生端编码前采样的皮肤颜色
        self._client_samples_at: float | None = None
        self._roi_sent: tuple[float, float, float, float] | None = None
        self._roi_sent_at: float | None = None
        self._roi_seq = 0
        self.anomalies = AnomalyTracker(dict(policies or DEFAULT_POLICIES))
        self.active: list[ActiveAnomaly] = []
        self.attention: Attention | None = None
        self.attention_score: float | None = None
        self._emotion: np.ndarray | None = None
        self._last_publish_at: float | None = None
        self._last_heart_rate_at: float | None = None
        self._audio_lock = threading.Lock()
        self._audio = AudioActivity()
        self._recent_audio = RecentAudio(self.SPEECH_EMOTION_INTERVAL_S)
        self._audio_state: AudioState | None = None
        self._audio_at: float | None = None
        self._speech_emotion: SpeechEmotion | None = None
        self._speech_emotion_at: float | None = None
        self._speech_clip_at: float | None = None

    # ---- 拉流线程 ----
    def sample_frame(self, frame: Frame) -> None:
        """每个解码帧：rPPG 皮肤采样（用显示时间戳；没有时用到达时间）。"""
        t = frame.pts_s if frame.pts_s is not None else frame.received_at
        self.pulse.add_frame(t, frame.image, frame.key_frame)

    def sample_audio(self, pcm: np.ndarray, now: float | None = None) -> None:
        """每段解码后的 16 kHz 单声道 PCM：电平与语音活动，并保留最近几秒供语音情绪分类。"""
        now = time.monotonic() if now is None else now
        with self._audio_lock:
            self._audio.add(pcm)
            self._recent_audio.add(pcm)
            self._audio_state = self._audio.state()
            self._audio_at = now

    # ---- 学生端样本读取线程 ----
    def add_client_samples(self, rows: list[list[float]], now: float) -> None:
        """一批学生端样本 ``[t_ms, r, g, b]``（网关已校验）。"""
        for t_ms, r, g, b in rows:
            self.client_pulse.add(t_ms / 1000.0, np.array([r, g, b], dtype=np.float64))
        self._client_samples_at = now

    # ---- 分析线程 ----
    def heart_rate(self, now: float) -> PpgResult:
        """当前心率估计：学生端样本在持续到达时优先用它（编码前的画面，脉搏未被量化掉）；
        它还没有给出心率而解码视频给出了时，用视频的。"""
        fresh = self._client_samples_at is not None and now - self._client_samples_at <= self.CLIENT_PPG_STALE_S
        client = dataclasses.replace(self.client_pulse.estimate(), source="client") if fresh else None
        if client is not None and client.hr_bpm is not None:
            return client  # 不必再算视频的估计（每次约 3 ms）
        video = dataclasses.replace(self.pulse.estimate(), source="video")
        return client if client is not None and video.hr_bpm is None else video

    def roi_due(self, now: float) -> tuple[int, tuple[float, float, float, float] | None] | None:
        """需要发给学生端的采样框 ``(seq, 相对坐标)``：框变化时立即，否则每 ``ROI_RESEND_S`` 秒一次；不需要时 None。"""
        roi = self.pulse.roi
        if roi is not None and self.latest is not None:
            width, height = self.latest.faces.image_size
            x0, y0, x1, y1 = roi
            roi = (round(x0 / width, 4), round(y0 / height, 4), round(x1 / width, 4), round(y1 / height, 4))
        changed = roi != self._roi_sent
        if not changed and self._roi_sent_at is not None and now - self._roi_sent_at < self.ROI_RESEND_S:
            return None
        if changed:
            self._roi_seq += 1
        self._roi_sent, self._roi_sent_at = roi, now
        return self._roi_seq, roi

    def audio_state(self, now: float) -> AudioState | None:
        """当前音频状态；没有音轨（或音频已停止超过 ``AUDIO_STALE_S``）时 None。"""
        if self._audio_at is None or now - self._audio_at > self.AUDIO_STALE_S:
            return None
        return self._audio_state

    def speech_clip_due(self, now: float) -> np.ndarray | None:
        """正在说话且距上次取片段已满间隔时，返回最近一段语音（供语音情绪分类），否则 None。"""
        audio = self.audio_state(now)
        if audio is None or not audio.talking:
            return None
        if self._speech_clip_at is not None and now - self._speech_clip_at < self.SPEECH_EMOTION_INTERVAL_S:
            return None
        self._speech_clip_at = now
        with self._audio_lock:
            return self._recent_audio.clip()

    def set_speech_emotion(self, result: SpeechEmotion | None, now: float | None = None) -> None:
        if result is not None:
            self._speech_emotion = result
            self._speech_emotion_at = time.monotonic() if now is None else now

    def speech_emotion(self, now: float) -> SpeechEmotion | None:
        if self._speech_emotion_at is None or now - self._speech_emotion_at > self.SPEECH_EMOTION_HOLD_S:
            return None
        return self._speech_emotion

    def observe(self, obs: Observation, now: float) -> None:
        previous = self.latest
        if previous is not None and previous.faces.count > 1:
            gap = obs.frame_received_at - previous.frame_received_at
            if 0 < gap <= self.MAX_GAP_S:
                self.multi_face_secs += gap
        self.latest = obs
        self.frames_analyzed += 1
        self.analysis_meter.mark(now)

        main = obs.faces.faces[0] if obs.faces.faces else None
        if main is not None:
            self.pulse.set_face(main.landmarks, obs.faces.image_size)
            pose = estimate_head_pose(main.landmarks, obs.faces.image_size)
            eye_dist = float(np.linalg.norm(main.landmarks[1] - main.landmarks[0]))
            self.attention = attention_from_pose(pose, main.score, eye_dist)
        else:
            self.pulse.clear_face()
            self.attention = attention_from_pose(None, None, 0.0)
        a = self.ATTENTION_SMOOTHING
        score = self.attention.score
        self.attention_score = score if self.attention_score is None else (1 - a) * self.attention_score + a * score

        if obs.emotion is not None:
            e = self.EMOTION_SMOOTHING
            self._emotion = obs.emotion if self._emotion is None else (1 - e) * self._emotion + e * obs.emotion
        elif main is None:
            self._emotion = None

        pose = self.attention.pose
        look_away = None if pose is None else math.hypot(pose.yaw, pose.pitch) > self.look_away_deg
        occluded = self._update_occlusion(obs, main, pose)
        audio = self.audio_state(now)
        self.active = self.anomalies.update(
            {
                "NO_FACE": main is None,
                "MULTI_FACE": obs.faces.count > 1,
                "LOOK_AWAY": look_away,
                "OCCLUSION": occluded,
                "TALKING": audio is not None and audio.talking,
            },
            obs.frame_received_at,
        )

    def _update_occlusion(self, obs: Observation, main: Face | None, pose: HeadPose | None) -> bool | None:
        """更新平滑后的遮挡比例；返回 OCCLUSION 条件（无法判断时 None）。

        没有人脸时不算遮挡；人脸消失超过 ``FACE_GONE_RESET_S`` 后丢弃参考外观（回来的可能是另一个人）。"""
        if main is None:
            if self._face_lost_at is None:
                self._face_lost_at = obs.frame_received_at
            elif obs.frame_received_at - self._face_lost_at >= self.FACE_GONE_RESET_S:
                self.occlusion.reset()
                self.occlusion_ratio = None
            return False
        self._face_lost_at = None
        if obs.gray is None:
            return None
        frontal = pose is not None and abs(pose.yaw) < self.FRONTAL_YAW_DEG and abs(pose.pitch) < self.FRONTAL_PITCH_DEG
        ratio = self.occlusion.update(obs.gray, main.landmarks, frontal)
        if ratio is None:
            return None
        a = self.OCCLUSION_SMOOTHING
        previous = self.occlusion_ratio
        self.occlusion_ratio = ratio if previous is None else round((1 - a) * previous + a * ratio, 3)
        return self.occlusion_ratio >= self.occlusion_threshold

    @property
    def emotion(self) -> EmotionEstimate | None:
        return None if self._emotion is None else summarize(self._emotion)

    def publish_due(self, now: float) -> bool:
        """刚分析完一帧时调用：距上次推送是否已满节流间隔。"""
        return self._last_publish_at is None or now - self._last_publish_at >= self.min_gap_s

    def heart_rate_due(self, now: float) -> bool:
        """心率事件每秒至多一次（随某次 monitor.update 一起发出）。"""
        if self._last_heart_rate_at is not None and now - self._last_heart_rate_at < self.HEART_RATE_EVENT_INTERVAL_S:
            return False
        self._last_heart_rate_at = now
        return True

    def mark_published(self, now: float) -> float:
        """记录一次推送，返回本次端内延迟（帧解码完成 -> 推送，毫秒）。"""
        assert self.latest is not None
        self._last_publish_at = now
        self.last_latency_ms = round((now - self.latest.frame_received_at) * 1000.0, 1)
        return self.last_latency_ms
