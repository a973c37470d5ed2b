"""头部姿态与身份比对的精度。头部姿态：肖像贴在 3-D 平均人脸上转到已知角度（``devtools.synthetic._posed``），
经 H.264 压缩，走与工作进程相同的分析路径（检测、68 点、求姿态、中立姿态），量相对中立姿态的 yaw / pitch 误差。测试与基准共用。"""

from __future__ import annotations

import time

import numpy as np

from devtools.synthetic import face_frames, h264_roundtrip

from .scenarios import FPS, Models, replay

LEAD_S, HOLD_S = 3.0, 6.0
YAWS = (0, 15, 30, 45, 60, -15, -30, -45, -60)
PITCHES = (-20, -35, 15)


def posed_clip(
    seed: int = 5, center_x: float = 0.5, motion: bool = True, lead: dict | None = None, crf: int = 28, **hold: float
) -> list[np.ndarray]:
    """前 ``LEAD_S`` 秒看屏幕（姿态 ``lead``，默认正对相机），之后 ``HOLD_S`` 秒保持姿态 ``hold``；H.264 压缩。"""
    common = {"seed": seed, "center_x": center_x, "motion": motion}
    frames = [
        *face_frames(int(LEAD_S * FPS), FPS, **common, **(lead or {})),  # type: ignore[arg-type]
        *face_frames(int(HOLD_S * FPS), FPS, **common, **hold),  # type: ignore[arg-type]
    ]
    return h264_roundtrip(frames, FPS, crf=crf)


def held_angles(timeline: list[dict], key: str) -> list[float]:
    """姿态保持期间（转过去 1 秒以后）每次分析相对中立姿态的角度。"""
    return [p[key] for p in timeline if p["t"] >= LEAD_S + 1.0 and p[key] is not None]


def bench_pose(seeds: int = 2) -> dict:
    """每个角度 2×``seeds`` 个片段（静止/运动）：逐帧绝对误差的均值、中位估计值与偏差。"""
    models = Models.load()
    started = time.perf_counter()

    def measure(key: str, truth: float, **pose: float) -> dict:
        errors, medians = [], []
        for seed in range(seeds):
            for motion in (False, True):
                _, timeline = replay(posed_clip(seed=seed, motion=motion, **pose), models)
                values = np.array(held_angles(timeline, key))
                errors.extend(np.abs(values - truth))
                medians.append(float(np.median(values)))
        return {
            "mean_abs_error_deg": round(float(np.mean(errors)), 1),
            "median_estimate_deg": round(float(np.median(medians)), 1),
        }

    yaw = {str(a): measure("yaw", a, yaw_deg=float(a)) for a in YAWS}
    pitch = {str(a): measure("pitch", a, pitch_deg=float(a)) for a in PITCHES}
    up_to_45 = [yaw[str(a)]["mean_abs_error_deg"] for a in (0, 15, 30, 45)]
    both_sides = [yaw[str(a)]["mean_abs_error_deg"] for a in (0, 15, 30, 45, -15, -30, -45)]
    return {
        "compression": "H.264 crf 28",
        "yaw": yaw,
        "pitch": pitch,
        "yaw_mean_abs_error_0_to_45": round(float(np.mean(up_to_45)), 1),
        "yaw_mean_abs_error_minus45_to_45": round(float(np.mean(both_sides)), 1),
        "seconds": round(time.perf_counter() - started, 1),
    }


def bench_identity(seeds: int = 2) -> dict:
    """换人：作答 8 秒后另一个人坐到座位上（t1.jpg 里接近正脸的人），2×``seeds`` 个片段（静止/运动），IDENTITY_CHANGED 的
    检出率与延迟；同一人：正常作答、转头 ±15°、低头 10°、戴眼镜，各片段里比对距离的最大值与误报。"""
    from .scenarios import first_time

    models = Models.load()
    started = time.perf_counter()
    swaps = []
    for person in ("t1-0", "t1-2"):
        for seed in range(seeds):
            for motion in (False, True):
                frames = [
                    *face_frames(int(8 * FPS), FPS, seed=seed, motion=motion),
                    *face_frames(int(12 * FPS), FPS, seed=seed, motion=motion, person=person),
                ]
                _, timeline = replay(h264_roundtrip(frames, FPS), models)
                first = first_time(timeline, "IDENTITY_CHANGED")
                swaps.append(None if first is None else round(first - 8.0, 1))
    same: dict[str, dict] = {}
    variants = {"answering": {}, "yaw_15": {"yaw_deg": 15.0}, "yaw_-15": {"yaw_deg": -15.0},
                "pitch_-10": {"pitch_deg": -10.0}, "glasses": {"glasses": True}}  # fmt: skip
    for name, hold in variants.items():
        distances, alarms = [], 0
        for seed in range(seeds):
            _, timeline = replay(posed_clip(seed=seed, **hold), models)
            distances += [p["identity_distance"] for p in timeline if p["identity_distance"] is not None]
            alarms += any("IDENTITY_CHANGED" in p["codes"] for p in timeline)
        same[name] = {"max_distance": round(max(distances), 3), "clips_with_false_alarm": alarms}
    detected = [s for s in swaps if s is not None]
    return {
        "swap_clips": len(swaps),
        "swap_detection_rate": round(len(detected) / len(swaps), 3),
        "swap_delay_s_mean": round(float(np.mean(detected)), 1) if detected else None,
        "swap_delay_s_max": max(detected, default=None),
        "same_person": same,
        "seconds": round(time.perf_counter() - started, 1),
    }
