"""监考场景回放与异常检出率：合成画面（真实人脸照片）与可选音轨，经真实检测器与每流状态对象
（与工作进程相同的分析路径：15 fps 解码、5 fps 分析、逐段送入音频），不经网络。测试与基准共用。"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from devtools.synthetic import empty_frames, face_frames, speech_pcm
from workers.analysis.audio import SAMPLE_RATE
from workers.analysis.face import FaceDetector
from workers.analysis.identity import face_chip, photo_chip
from workers.analysis.landmarks import FaceLandmarker
from workers.models.identity import FaceDescriber
from workers.state.stream_state import StreamState
from workers.state.vision import Observation

FPS = 15.0
STEP = 3  # 15 fps 解码、5 fps 分析
SPEECH_TEXT = "请大家保持安静，考试现在开始，不要交头接耳，认真作答。"

@dataclass(frozen=True)
class Models:
    """回放用到的模型（与工作进程的分析线程相同）。"""

    detector: FaceDetector
    landmarker: FaceLandmarker
    describer: FaceDescriber  # 工作进程在子进程里算（IdentityService），回放时同步算：结果不受回放速度影响

    @classmethod
    def load(cls) -> Models:
        return cls(FaceDetector(), FaceLandmarker(), FaceDescriber())


def replay(
    frames: Iterable[np.ndarray], models: Models, audio: np.ndarray | None = None, photo: bytes | None = None
) -> tuple[StreamState, list[dict]]:
    """逐帧回放，返回状态对象与每次分析后的时间线 ``{t, codes, multi, occlusion, yaw, pitch, talking}``
    （``yaw`` / ``pitch``：相对学到的中立姿态）。``audio``：16 kHz 单声道 int16，与画面同步送入；
    ``photo``：创建会话时给的参考照片（JPEG / PNG 字节）。"""
    tracker = StreamState(publish_interval_s=0.4, analysis_interval_s=1.0 / (FPS / STEP))
    identity = tracker.vision.identity
    if photo is not None:
        identity.offer_photo(photo)
    timeline = []
    fed = 0
    for i, image in enumerate(frames):
        t = i / FPS
        if audio is not None:
            upto = min(len(audio), int((t + 1 / FPS) * SAMPLE_RATE))
            if upto > fed:
                tracker.audio.sample(audio[fed:upto], now=t)
                fed = upto
        if i % STEP:
            continue
        faces = tracker.vision.face_tracker.detect(models.detector, image, t)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        marks = tracker.vision.landmarks.locate(models.landmarker, gray, faces.faces[0], t) if faces.faces else None
        tracker.observe(Observation(faces, t, 1.7e9 + t, gray=gray, landmarks=marks), t)
        reference = identity.take_photo()
        if reference is not None:
            chip = photo_chip(reference, models.detector, models.landmarker)
            identity.deliver_reference(models.describer.describe(chip)) if chip is not None else identity.photo_unusable()
        if marks is not None and tracker.vision.identity_due():
            chip = face_chip(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), faces.faces[0], marks)
            identity.deliver(models.describer.describe(chip), t)
        pose = tracker.vision.attention.pose if tracker.vision.attention else None
        audio_state = tracker.audio.current(t)
        timeline.append(
            {
                "t": t,
                "codes": {a.code for a in tracker.active},
                "multi": tracker.multi_face_secs,
                "occlusion": tracker.vision.occlusion_ratio,
                "yaw": None if pose is None else pose.yaw,
                "pitch": None if pose is None else pose.pitch,
                "identity_distance": tracker.vision.identity.distance,
                "talking": bool(audio_state and audio_state.talking),
            }
        )
    return tracker, timeline


def first_time(timeline: list[dict], code: str, after: float = 0.0) -> float | None:
    return next((p["t"] for p in timeline if p["t"] >= after and code in p["codes"]), None)


def _hiss(seconds: float, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0, 30, int(seconds * SAMPLE_RATE)).astype(np.int16)  # 约 -60 dBFS 的底噪


@dataclass(frozen=True)
class Scenario:
    name: str
    code: str | None  # 应当出现的异常（None：正常作答，不应出现任何异常）
    change_s: float  # 条件开始的时刻
    end_s: float  # 条件结束的时刻（片段长度或语音结束）
    frames: list[np.ndarray]
    audio: np.ndarray | None = None


def scenarios(seed: int, motion: bool, speech: np.ndarray, lead_s: float = 4.0, hold_s: float = 10.0) -> list[Scenario]:
    """每种异常一个场景（前 ``lead_s`` 秒正常，随后 ``hold_s`` 秒出现异常条件），外加一个正常作答场景。"""
    rng = np.random.default_rng(seed)
    n_lead, n_hold = int(lead_s * FPS), int(hold_s * FPS)
    total = lead_s + hold_s

    def normal(n: int, **kw: object) -> list[np.ndarray]:
        return list(face_frames(n, FPS, seed=seed, motion=motion, **kw))

    talk = np.concatenate([_hiss(lead_s, rng), speech])
    talk = np.concatenate([talk, _hiss(max(0.0, total - len(talk) / SAMPLE_RATE), rng)])
    return [
        Scenario("normal", None, 0.0, total, normal(n_lead + n_hold), audio=_hiss(total, rng)),
        Scenario("second_person", "MULTI_FACE", lead_s, total, normal(n_lead) + normal(n_hold, second_face=True)),
        Scenario("face_leaves", "NO_FACE", lead_s, total, normal(n_lead) + list(empty_frames(n_hold, FPS, seed=seed))),
        Scenario("lower_face_covered", "OCCLUSION", lead_s, total, normal(n_lead) + normal(n_hold, cover_lower=True)),
        Scenario("turned_40deg", "LOOK_AWAY", lead_s, total, normal(n_lead) + normal(n_hold, yaw_deg=40.0)),
        Scenario("looking_down_35deg", "LOOKING_DOWN", lead_s, total, normal(n_lead) + normal(n_hold, pitch_deg=-35.0)),
        Scenario(
            "speech",
            "TALKING",
            lead_s,
            lead_s + len(speech) / SAMPLE_RATE,
            normal(len(talk) * int(FPS) // SAMPLE_RATE),
            audio=talk,
        ),
    ]


def bench_anomalies(seeds: int = 3) -> dict:
    """每种异常 ``2 * seeds`` 个场景（静止/运动 × 种子）：检出率、检出延迟、条件期间的报告比例；正常场景的误报比例。"""
    models = Models.load()
    speech = speech_pcm(SPEECH_TEXT)
    per_code: dict[str, list[dict]] = {}
    false_alarm: dict[str, float] = {}
    normal_points = 0
    for seed in range(seeds):
        for motion in (False, True):
            for sc in scenarios(seed, motion, speech):
                _, timeline = replay(sc.frames, models, sc.audio)
                if sc.code is None:
                    normal_points += len(timeline)
                    for p in timeline:
                        for code in p["codes"]:
                            false_alarm[code] = false_alarm.get(code, 0) + 1
                    continue
                first = first_time(timeline, sc.code, after=sc.change_s)
                # 报告比例：条件开始 3 秒后（越过触发时长）到条件结束之间，异常处于报告状态的分析点比例
                window = [p for p in timeline if sc.change_s + 3.0 <= p["t"] < sc.end_s]
                per_code.setdefault(sc.code, []).append(
                    {
                        "detected": first is not None and first <= sc.end_s,
                        "latency_s": None if first is None else round(first - sc.change_s, 2),
                        "active_share": round(sum(sc.code in p["codes"] for p in window) / max(1, len(window)), 3),
                        "before_change": any(sc.code in p["codes"] for p in timeline if p["t"] < sc.change_s),
                        "other_codes": sorted({c for p in timeline for c in p["codes"]} - {sc.code}),
                    }
                )
    out: dict[str, dict] = {}
    for code, runs in per_code.items():
        latencies = [r["latency_s"] for r in runs if r["latency_s"] is not None]
        out[code] = {
            "scenarios": len(runs),
            "detection_rate": round(sum(r["detected"] for r in runs) / len(runs), 3),
            "latency_s_max": max(latencies, default=None),
            "latency_s_mean": round(float(np.mean(latencies)), 2) if latencies else None,
            "active_share_mean": round(float(np.mean([r["active_share"] for r in runs])), 3),
            "raised_before_condition": sum(r["before_change"] for r in runs),
            "other_codes_raised": sorted({c for r in runs for c in r["other_codes"]}),
        }
    return {
        "by_code": out,
        "normal": {
            "analysis_points": normal_points,
            "false_alarm_share": {code: round(n / max(1, normal_points), 4) for code, n in sorted(false_alarm.items())},
        },
    }
