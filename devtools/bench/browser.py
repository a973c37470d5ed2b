"""浏览器编码器下的 rPPG：合成片段 -> Chromium 假摄像头（y4m）-> Chromium 的 WebRTC 编码器（H.264 优先、码率上限）
-> WHIP 替身（aiortc 解码，无损录下每帧与 RTP 时间戳）-> 与工作进程相同的分析路径。

学生端真正发出的画面经过的是浏览器的编码器（码控、关键帧策略都与 x264 命令行不同），这里量的就是它。
每个片段实时播放，耗时约为片段时长加 15 秒。心率恒定（录制起点与源片段的相位无关）。
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from devtools.stack.servers import fake_camera_args, require_binary
from devtools.stack.whip_ingest import WhipStandin
from devtools.synthetic import face_frames, simulate_pulse
from workers.analysis.face import FaceDetector

from .accuracy import FPS, NOISE, ClipScore, _no_pulse_summary, _summary, run_clip

LEAD_S = 6.0  # 源片段比录制多出的时长：浏览器启动、协商、码控爬坡都在这段里，录制不会碰到循环接缝


def through_browser(
    frames: list[np.ndarray], record_s: float, kbps: int, workdir: Path
) -> Iterator[tuple[np.ndarray, bool, float]]:
    """片段经 Chromium 编码、WHIP 替身解码后的 (画面, 是否关键帧（未知，恒为 False）, 时间)。"""
    from playwright.sync_api import sync_playwright

    y4m, recording = workdir / "source.y4m", workdir / "received.mkv"
    recording.unlink(missing_ok=True)
    chromium_args = fake_camera_args(frames, FPS, y4m)
    standin = WhipStandin(record=str(recording)).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=require_binary("chromium"), args=chromium_args)
            page = browser.new_page()
            page.goto(f"{standin.url}/_standin/publisher?path=bench&kbps={kbps}")
            page.wait_for_selector("body[data-state=connected]", state="attached", timeout=30_000)
            time.sleep(record_s + 1.0)
            browser.close()
    finally:
        standin.stop()  # 替身退出时写完录像
    times = json.loads(Path(f"{recording}.times.json").read_text())
    with av.open(str(recording)) as container:
        for frame, t in zip(container.decode(video=0), times):
            if t > record_s:
                return
            yield frame.to_ndarray(format="bgr24"), False, t


def bench_browser(heart_rates: list[float], duration_s: float, kbps: int) -> dict:
    detector = FaceDetector()
    total = duration_s + LEAD_S
    scores: list[ClipScore] = []
    nopulse: list[ClipScore] = []
    fps_seen: list[float] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rppg-browser-") as tmp:
        workdir = Path(tmp)

        def run(pulse, hr: float, motion: bool, seed: int) -> ClipScore:
            frames = list(face_frames(int(total * FPS), FPS, pulse=pulse, motion=motion, drift=0.02, seed=seed, noise=NOISE))
            received = list(through_browser(frames, duration_s, kbps, workdir))
            if len(received) > 1:
                fps_seen.append((len(received) - 1) / (received[-1][2] - received[0][2]))
            return run_clip(received, pulse, detector, hr, motion, f"chromium_{kbps}k")

        for k, hr in enumerate(heart_rates):
            pulse = simulate_pulse(total, hr, seed=k, steady=True)
            for motion in (False, True):
                scores.append(run(pulse, hr, motion, k))
        for motion in (False, True):
            nopulse.append(run(None, 0.0, motion, 99))
    return {
        "heart_rates_bpm": heart_rates,
        "clip_seconds": duration_s,
        "max_bitrate_kbps": kbps,
        "received_fps_mean": round(float(np.mean(fps_seen)), 1) if fps_seen else None,
        "all": _summary(scores),
        "static": _summary([s for s in scores if not s.motion]),
        "motion": _summary([s for s in scores if s.motion]),
        "no_pulse": _no_pulse_summary(nopulse),
        "seconds": round(time.perf_counter() - started, 1),
    }
