"""视觉部分的每流状态：人脸、专注度（头部姿态）、面部情绪、遮挡、多人累计时长的平滑与累积（分析线程独占）。"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..analysis.attention import Attention, GazeRule, NeutralPose, attention_from_pose, median_pose
from ..analysis.emotion import EmotionEstimate, summarize
from ..analysis.face import Face, FaceDetections
from ..analysis.face_tracking import FaceTracker
from ..analysis.head_pose import HeadPose, HeadPoseEstimator
from ..analysis.identity import IdentityTracker
from ..analysis.landmarks import LandmarkTracker
from ..analysis.occlusion import OcclusionEstimator


@dataclass(frozen=True)
class Observation:
    """一次分析的结果及其所分析帧的时间信息。"""

    faces: FaceDetections
    frame_received_at: float  # monotonic
    frame_wall_time: float  # unix 秒
    emotion: np.ndarray | None = None  # 主人脸的情绪概率（未计算时 None）
    gray: np.ndarray | None = None  # 所分析帧的灰度图（遮挡估计用）
    landmarks: np.ndarray | None = None  # 主人脸的 68 个关键点（:mod:`..analysis.landmarks`；没有人脸时 None）

    @property
    def main_face(self) -> Face | None:
        return self.faces.faces[0] if self.faces.faces else None


class VisionState:
    """把逐帧的人脸、姿态、情绪、遮挡结果平滑成当前值，并给出视觉类异常的条件。"""

    # 两次分析间隔超过该值时不计入 multi_face_secs（断流期间不累积）
    MAX_GAP_S = 2.0
    ATTENTION_SMOOTHING = 0.4
    # 面部情绪每路至多每 EMOTION_INTERVAL_S 推理一次（表情以秒计地变化，推送也只有 2.5 Hz；5 fps 时隔一帧一次，
    # 省下约一半的情绪推理）；平滑系数按这个间隔取，时间常数与逐帧推理、系数 0.5 时相同
    EMOTION_INTERVAL_S = 0.4
    EMOTION_SMOOTHING = 0.75
    OCCLUSION_SMOOTHING = 0.3
    FRONTAL_YAW_DEG = 25.0
    FRONTAL_PITCH_DEG = 20.0
    FACE_GONE_RESET_S = 2.0
    POSE_MEDIAN_FRAMES = 5  # 视线类异常按最近这么多次分析（5 fps 时 1 秒）的姿态中位数判定
    IDENTITY_YAW_DEG = 20.0  # 取身份描述子的姿态范围（相对中立姿态）：偏得多了同一人的距离也接近阈值
    IDENTITY_PITCH_DEG = 15.0

    def __init__(
        self,
        pose_estimator: HeadPoseEstimator,
        gaze: GazeRule | None = None,
        occlusion_threshold: float = 0.3,
        identity: IdentityTracker | None = None,
    ) -> None:
        self.pose_estimator = pose_estimator
        self.gaze = gaze or GazeRule()
        self.identity = identity or IdentityTracker()
        self.neutral = NeutralPose()
        self.occlusion_threshold = occlusion_threshold
        self.occlusion = OcclusionEstimator()
        self.face_tracker = FaceTracker()  # 检测之前：这一路下一帧在哪块检测
        self.landmarks = LandmarkTracker()  # 检测之后：主人脸的 68 个点要不要重新预测
        self.occlusion_ratio: float | None = None
        self._face_lost_at: float | None = None
        self.latest: Observation | None = None
        self.multi_face_secs = 0.0
        self.attention: Attention | None = None
        self.camera_pose: HeadPose | None = None  # 主人脸相对相机的姿态
        self._recent_poses: deque[HeadPose] = deque(maxlen=self.POSE_MEDIAN_FRAMES)  # 相对中立姿态
        self._gaze: dict[str, bool | None] = {}  # 上一次能判断时的视线类条件（滞回用）
        self.attention_score: float | None = None
        self._emotion: np.ndarray | None = None
        self._emotion_at: float | None = None  # 上次情绪推理的那一帧的时刻

    def observe(self, obs: Observation) -> dict[str, bool | None]:
        """并入一次分析结果，返回视觉类异常的条件（None：无法判断）。"""
        previous = self.latest
        if previous is not None and previous.faces.count > 1:
            gap = obs.frame_received_at - previous.frame_received_at
            if 0 < gap <= self.MAX_GAP_S:
                self.multi_face_secs += gap
        self.latest = obs
        main = obs.main_face
        self._update_attention(obs, main)
        self._update_emotion(obs, main)
        assert self.attention is not None
        returned = main is not None and self._face_lost_at is not None
        conditions = {
            "NO_FACE": main is None,
            "MULTI_FACE": obs.faces.count > 1,
            **self._gaze_conditions(),
            "OCCLUSION": self._update_occlusion(obs, main, self.camera_pose),
        }
        if returned:
            self.identity.face_returned()
        conditions["IDENTITY_CHANGED"] = self.identity.condition()
        return conditions

    def identity_wanted(self) -> bool:
        """刚并入的这一帧该不该取身份描述子：中立姿态已学到、接近正脸、没有遮挡、画面里只有一张脸，且到了时间。"""
        obs = self.latest
        return obs is not None and self.identity.wants(obs.frame_received_at, self._identity_usable())

    def identity_due(self) -> bool:
        """同 :meth:`identity_wanted`，返回 True 即视为已提交（见 :meth:`IdentityTracker.due`）。"""
        obs = self.latest
        return obs is not None and self.identity.due(obs.frame_received_at, self._identity_usable())

    def _identity_usable(self) -> bool:
        obs, pose = self.latest, self.attention.pose if self.attention else None
        if obs is None or pose is None or obs.landmarks is None or obs.faces.count != 1 or not self.neutral.learnt:
            return False
        return (
            abs(pose.yaw) < self.IDENTITY_YAW_DEG
            and abs(pose.pitch) < self.IDENTITY_PITCH_DEG
            and (self.occlusion_ratio is None or self.occlusion_ratio < self.occlusion_threshold)
        )

    def _update_attention(self, obs: Observation, main: Face | None) -> None:
        pose = None
        if main is not None and obs.landmarks is not None:
            pose = self.pose_estimator.estimate(obs.landmarks, obs.faces.image_size)
        self.camera_pose = pose
        if pose is not None and main is not None and obs.landmarks is not None:
            self.neutral.learn(pose)
            eye_dist = float(np.linalg.norm(obs.landmarks[45] - obs.landmarks[36]))
            relative = self.neutral.relative(pose)
            self._recent_poses.append(relative)
            self.attention = attention_from_pose(relative, main.score, eye_dist)
        else:
            self.attention = attention_from_pose(None, None, 0.0)
            if main is None:
                self._recent_poses.clear()
        a = self.ATTENTION_SMOOTHING
        score = self.attention.score
        self.attention_score = score if self.attention_score is None else (1 - a) * self.attention_score + a * score

    def _gaze_conditions(self) -> dict[str, bool | None]:
        """视线类异常：这一帧有姿态时按最近几次的中位数判定（带滞回），没有时无法判断。"""
        pose = None if self.attention is None or self.attention.pose is None else median_pose(self._recent_poses)
        conditions = self.gaze.conditions(pose, self.neutral.learnt, self._gaze)
        if pose is not None:
            self._gaze = conditions
        return conditions

    def emotion_due(self, t: float, analysis_interval_s: float) -> bool:
        """时刻 ``t`` 的帧要不要做情绪推理（允许半个分析间隔的帧到达抖动）。"""
        last = self._emotion_at
        return last is None or not 0.0 <= t - last < self.EMOTION_INTERVAL_S - analysis_interval_s / 2

    def _update_emotion(self, obs: Observation, main: Face | None) -> None:
        if obs.emotion is not None:
            self._emotion_at = obs.frame_received_at
            e = self.EMOTION_SMOOTHING
            self._emotion = obs.emotion if self._emotion is None else (1 - e) * self._emotion + e * obs.emotion
        elif main is None:
            self._emotion = self._emotion_at = None

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
