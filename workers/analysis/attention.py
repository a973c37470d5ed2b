"""专注度：头部相对“看屏幕时的姿态”转了多少。

摄像头很少正对学生（笔记本在侧面、摄像头夹在显示器一角、人坐在画面边上），学生看屏幕时相对相机本来就有一个
姿态。:class:`NeutralPose` 在会话开头人脸稳定的几秒里学到这个姿态，之后的偏转都相对它：

- ``score``：偏转角 ``sqrt(yaw² + pitch²)``（相对中立姿态）在 15° 内得 1，到 45° 线性降到 0；没有人脸时 0；
- 视线偏离（LOOK_AWAY）：左右转过 ``look_away_deg``，或抬头超过这个角度；
- 低头（LOOKING_DOWN）：低头超过 ``looking_down_deg`` 而左右没有转过 ``look_away_deg``（看桌面、手机、纸条）。

中立姿态学到之前两种异常都是“无法判断”（None），专注度按正对相机计算。
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .head_pose import HeadPose


@dataclass
class NeutralPose:
    """学生看屏幕时的姿态（相对相机）：连续 ``frames`` 次姿态彼此相差都在 ``spread_deg`` 内时取其中位数，
    之后不再改变。偏得太多（yaw 超过 ``max_yaw_deg``、pitch 超过 ``max_pitch_deg``）的姿态不是“看屏幕”，不参与学习。

    >>> neutral = NeutralPose()
    >>> for pose in poses: neutral.learn(pose)
    >>> neutral.relative(pose).yaw
    """

    frames: int = 10  # 5 fps 时 2 秒
    spread_deg: float = 8.0
    max_yaw_deg: float = 45.0
    max_pitch_deg: float = 30.0
    yaw: float | None = None
    pitch: float | None = None
    _window: deque[tuple[float, float]] = field(default_factory=deque)

    @property
    def learnt(self) -> bool:
        return self.yaw is not None

    def learn(self, pose: HeadPose | None) -> None:
        if self.learnt:
            return
        if pose is None or abs(pose.yaw) > self.max_yaw_deg or abs(pose.pitch) > self.max_pitch_deg:
            self._window.clear()
            return
        self._window.append((pose.yaw, pose.pitch))
        while len(self._window) > self.frames:
            self._window.popleft()
        if len(self._window) == self.frames:
            angles = np.array(self._window)
            if float((angles.max(axis=0) - angles.min(axis=0)).max()) <= self.spread_deg:
                self.yaw, self.pitch = (float(v) for v in np.median(angles, axis=0))

    def relative(self, pose: HeadPose) -> HeadPose:
        """相对中立姿态的偏转（还没学到时相对正对相机）。"""
        return HeadPose(
            yaw=pose.yaw - (self.yaw or 0.0),
            pitch=pose.pitch - (self.pitch or 0.0),
            roll=pose.roll,
            reprojection_px=pose.reprojection_px,
        )


@dataclass(frozen=True)
class Attention:
    score: float  # 1 = 看着屏幕；随偏转角增大、无人脸而下降
    confidence: float
    pose: HeadPose | None  # 相对中立姿态


def attention_from_pose(
    pose: HeadPose | None, face_score: float | None, eye_dist_px: float, free_deg: float = 15.0, zero_deg: float = 45.0
) -> Attention:
    """``pose`` 是相对中立姿态的偏转。置信度：检测分数 × 拟合程度（重投影误差相对眼距越大越低）；
    没有人脸时专注度为 0、置信度 0.6（正脸检测召回率高，但大角度转头本身也会导致检测不到）。"""
    if pose is None or face_score is None:
        return Attention(score=0.0, confidence=0.6, pose=None)
    angle = math.hypot(pose.yaw, pose.pitch)
    score = 1.0 - min(1.0, max(0.0, angle - free_deg) / (zero_deg - free_deg))
    fit = math.exp(-pose.reprojection_px / max(1.0, 0.2 * eye_dist_px))
    return Attention(score=round(score, 3), confidence=round(face_score * fit, 3), pose=pose)


def median_pose(poses: Iterable[HeadPose]) -> HeadPose | None:
    """逐个角度取中位数：单帧关键点的跳动（实测偶尔 10° 上下）不会打断一段持续的转头。"""
    angles = np.array([(p.yaw, p.pitch, p.roll, p.reprojection_px) for p in poses])
    if not len(angles):
        return None
    yaw, pitch, roll, error = (float(v) for v in np.median(angles, axis=0))
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll, reprojection_px=error)


@dataclass(frozen=True)
class GazeRule:
    """由相对中立姿态的偏转判定 LOOK_AWAY / LOOKING_DOWN，带 ``hysteresis_deg`` 的滞回：条件已成立时，角度回落到
    阈值减去这么多才算不成立（40° 的转头读数在 24–36° 间跳动，阈值 25° 时没有滞回会被反复打断）。"""

    look_away_deg: float = 25.0  # 默认值与 Settings.look_away_deg / looking_down_deg 相同
    looking_down_deg: float = 18.0
    hysteresis_deg: float = 5.0

    def conditions(
        self, relative: HeadPose | None, neutral_learnt: bool, previous: dict[str, bool | None] | None = None
    ) -> dict[str, bool | None]:
        if relative is None or not neutral_learnt:
            return {"LOOK_AWAY": None, "LOOKING_DOWN": None}
        was = previous or {}
        away = self.look_away_deg - (self.hysteresis_deg if was.get("LOOK_AWAY") else 0.0)
        down = self.looking_down_deg - (self.hysteresis_deg if was.get("LOOKING_DOWN") else 0.0)
        turned = abs(relative.yaw) > away
        return {
            "LOOK_AWAY": turned or relative.pitch > away,
            "LOOKING_DOWN": not turned and relative.pitch < -down,
        }
