"""rPPG 精度基准：合成片段（已知心率、可选运动、无压缩 / H.264 不同码率与 AQ 设置）走与工作进程相同的
分析路径（每 3 帧检测一次人脸、逐帧皮肤采样、POS 估计），与按真实心跳时刻计算的窗口心率比较。"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from devtools.stack.servers import ffmpeg_from_frames
from devtools.synthetic import PulseTrack, bgr_to_i420, face_frames, simulate_pulse
from workers.analysis.face import FaceDetector
from workers.analysis.face_tracking import FaceTracker
from workers.analysis.ppg import PulseMonitor

FPS = 15.0
DETECT_EVERY = 3  # 15 fps 解码、5 fps 分析，与工作进程默认值一致
SCORE_AFTER_S = 10.0
ESTIMATE_EVERY = 6  # 每 0.4 s 估计一次（与 monitor.update 节流相同）
NOISE = 4.0  # 相机噪声（8 位灰度级的标准差），摄像头的常见水平
GOP = 150  # 10 秒一个关键帧：浏览器的 WebRTC 编码器只在丢包/新订阅时才发关键帧


def uncompressed(frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, bool, float]]:
    return ((bgr_to_i420(f), False, i / FPS) for i, f in enumerate(frames))


@dataclass(frozen=True)
class Codec:
    name: str
    bitrate_k: int | None = None  # 码率（kbit/s）；与 crf 都为 None 时不压缩
    aq_mode: int = 1
    crf: int | None = None  # 恒定质量模式

    def transcode(self, frames: list[np.ndarray], workdir: Path) -> Iterator[tuple[np.ndarray, bool, float]]:
        """逐帧给出 (解码后的 I420 平面, 是否关键帧, 时间)：与工作进程拿到的一样。"""
        if self.bitrate_k is None and self.crf is None:
            yield from uncompressed(frames)
            return
        rate = (
            ["-crf", str(self.crf)]
            if self.crf is not None
            else ["-b:v", f"{self.bitrate_k}k", "-maxrate", f"{self.bitrate_k}k", "-bufsize", f"{self.bitrate_k}k"]
        )
        path = workdir / f"{self.name}.mp4"
        ffmpeg_from_frames(
            frames,
            FPS,
            [
                "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                "-g", str(GOP), *rate, "-x264-params", f"aq-mode={self.aq_mode}", str(path),
            ],
        )  # fmt: skip
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                yield frame.reformat(format="yuv420p").to_ndarray(), frame.key_frame, i / FPS


CODECS = (
    Codec("raw"),
    Codec("h264_2500k", 2500, aq_mode=1),
    Codec("h264_1000k", 1000, aq_mode=1),
    Codec("h264_1000k_aq0", 1000, aq_mode=0),
    Codec("h264_300k", 300, aq_mode=1),
    Codec("h264_300k_aq0", 300, aq_mode=0),
)


# 无脉搏对照所用的编码设置：无压缩与目标码率（1 Mbit/s，AQ 开/关）
NO_PULSE_CODECS = ("raw", "h264_1000k", "h264_1000k_aq0")


@dataclass(frozen=True)
class ClipScore:
    hr_bpm: float
    motion: bool
    codec: str
    errors: list[float]  # 有估计时的绝对误差（bpm）
    estimates: int  # 评分时段内的估计次数
    first_hr_s: float | None  # 人脸出现后首个非空 hr_bpm 的时刻
    quality: list[float]


def run_clip(
    frames: Iterable[tuple[np.ndarray, bool, float]],
    pulse: PulseTrack | None,
    detector: FaceDetector,
    hr_bpm: float = 0.0,
    motion: bool = False,
    codec: str = "raw",
) -> ClipScore:
    monitor = PulseMonitor()
    faces_near = FaceTracker()  # 与工作进程相同：多数帧只在上一帧人脸附近检测
    errors, quality = [], []
    estimates, first = 0, None
    for i, (i420, key_frame, t) in enumerate(frames):
        if i % DETECT_EVERY == 0:
            faces = faces_near.detect(detector, cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420), t)
            if faces.faces:
                monitor.set_face(faces.faces[0].landmarks, faces.image_size)
            else:
                monitor.clear_face()
        monitor.add_frame(t, i420, key_frame)
        if i % ESTIMATE_EVERY:
            continue
        result = monitor.estimate()
        if result.hr_bpm is not None and first is None:
            first = t
        if t < SCORE_AFTER_S:
            continue
        estimates += 1
        if result.signal_quality is not None:
            quality.append(result.signal_quality)
        if result.hr_bpm is not None and pulse is not None:
            truth = pulse.true_hr(t, result.window_s)
            if truth is not None:
                errors.append(abs(result.hr_bpm - truth))
        elif result.hr_bpm is not None:
            errors.append(float("nan"))  # 无脉搏片段却给出了心率
    return ClipScore(hr_bpm, motion, codec, errors, estimates, first, quality)


def _summary(scores: list[ClipScore]) -> dict:
    errs = np.array([e for s in scores for e in s.errors])
    est = sum(s.estimates for s in scores)
    firsts = [s.first_hr_s for s in scores]
    return {
        "clips": len(scores),
        "mae_bpm": round(float(errs.mean()), 2) if len(errs) else None,
        "rmse_bpm": round(float(np.sqrt((errs**2).mean())), 2) if len(errs) else None,
        "within_5_bpm": round(float((errs <= 5).mean()), 3) if len(errs) else None,
        "coverage": round(len(errs) / est, 3) if est else None,  # 评分时段内给出心率的比例
        "first_hr_s_max": max((f for f in firsts if f is not None), default=None),
        "clips_without_hr": sum(f is None for f in firsts),
    }


def _no_pulse_summary(runs: list[ClipScore]) -> dict:
    """无脉搏对照：给出心率的次数（都是误报）、估计次数与最高信号质量。"""
    return {
        "clips": len(runs),
        "hr_reported": sum(len(s.errors) for s in runs),
        "estimates": sum(s.estimates for s in runs),
        "max_quality": round(max((q for s in runs for q in s.quality), default=0.0), 3),
    }


def bench_rppg(heart_rates: list[float], duration_s: float, codecs: tuple[Codec, ...] = CODECS) -> dict:
    detector = FaceDetector()
    scores: list[ClipScore] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rppg-") as tmp:
        workdir = Path(tmp)
        for k, hr in enumerate(heart_rates):
            pulse = simulate_pulse(duration_s, hr, seed=k)
            for motion in (False, True):
                frames = list(
                    face_frames(int(duration_s * FPS), FPS, pulse=pulse, motion=motion, drift=0.02, seed=k, noise=NOISE)
                )
                for codec in codecs:
                    scores.append(run_clip(codec.transcode(frames, workdir), pulse, detector, hr, motion, codec.name))
        # 无脉搏对照：同一张脸，不调制
        nopulse = []
        for motion in (False, True):
            frames = list(
                face_frames(int(duration_s * FPS), FPS, pulse=None, motion=motion, drift=0.02, seed=99, noise=NOISE)
            )
            for codec in codecs:
                if codec.name in NO_PULSE_CODECS:
                    nopulse.append(run_clip(codec.transcode(frames, workdir), None, detector, codec=codec.name))
    by_codec = {c.name: _summary([s for s in scores if s.codec == c.name]) for c in codecs}
    by_motion = {
        ("motion" if m else "static"): _summary([s for s in scores if s.motion == m and s.codec == "raw"])
        for m in (False, True)
    }
    return {
        "heart_rates_bpm": heart_rates,
        "clip_seconds": duration_s,
        "scored_after_s": SCORE_AFTER_S,
        "by_codec": by_codec,
        "raw_by_motion": by_motion,
        "no_pulse": {
            name: _no_pulse_summary(runs)
            for name in NO_PULSE_CODECS
            if (runs := [s for s in nopulse if s.codec == name])
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
