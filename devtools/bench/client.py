"""学生端编码前采样的 rPPG，走完整条真实路径（实时）：

合成片段（已知心率）-> Chromium 假摄像头（y4m）-> 学生端页面 /student-demo（dashboard/student.js + ppg-sampler.js）
-> 网关信令 -> WHIP 替身（aiortc；像 MediaMTX 一样转成 RTSP）-> 工作进程读 RTSP、检测人脸、发 ``ppg.roi``
-> 页面在编码前的画面上采样皮肤颜色、上传 ``ppg.samples`` -> 网关 -> Redis -> 工作进程估计心率 -> /monitor。

学生端视频码率上限由 ``kbps`` 给出（学生端经浏览器编码器推流，码率只影响服务器看到的画面，不影响采样）。
评分与离线基准相同：人脸首次被检测到后 ``SCORE_AFTER_S`` 秒起，每条 ``monitor.update`` 的心率与真实心率比较。
每个片段实时播放，约为片段时长加 15 秒。
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from devtools.stack.servers import fake_camera_args, free_port, require_binary
from devtools.stack.whip_ingest import WhipStandin
from devtools.synthetic import face_frames, simulate_pulse

from .accuracy import FPS, NOISE, SCORE_AFTER_S, ClipScore, _no_pulse_summary, _summary
from .local import LocalStack, UpdateLog, local_stack

LEAD_S = 20.0  # 片段比评分时段多出的时长：页面启动、协商、人脸检测都在这段里，评分不会碰到循环接缝


def _score(updates: list[dict], hr: float, motion: bool, duration_s: float, label: str) -> ClipScore:
    face_at = next((t for t, d in updates if d["metrics"]["face"]["detected"]), None)
    errors, quality, estimates, first = [], [], 0, None
    if face_at is not None:
        for t, d in updates:
            ppg = d["metrics"]["ppg"]
            since = t - face_at
            if since < 0 or since > duration_s:
                continue
            client_hr = ppg["hr_bpm"] if ppg["source"] == "client" else None
            if client_hr is not None and first is None:
                first = round(since, 2)
            if since < SCORE_AFTER_S:
                continue
            estimates += 1
            if ppg["signal_quality"] is not None and ppg["source"] == "client":
                quality.append(ppg["signal_quality"])
            if client_hr is not None:
                errors.append(abs(client_hr - hr) if hr else float("nan"))
    return ClipScore(hr, motion, label, errors, estimates, first, quality)


def _run_clip(
    stack: LocalStack, log: UpdateLog, chromium_args: list[str], kbps: int, duration_s: float
) -> list[tuple[float, dict]]:
    """一个片段：新建会话，页面推流并采样 ``duration_s`` 秒（从人脸首次被检测到算起），返回该会话的 (时刻, monitor.update)。"""
    from playwright.sync_api import sync_playwright

    name = f"exam-bench-{uuid.uuid4().hex[:8]}-user-1"
    session = stack.post("/api/create_session", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)})
    sid = session["session_id"]
    start = len(log.snapshot())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=require_binary("chromium"), args=chromium_args)
        try:
            page = browser.new_page()
            page.goto(
                f"{stack.base}/student-demo?session_id={sid}&max_video_kbps={kbps}#publish_token={session['publish_token']}"
            )
            page.click("#start")
            page.wait_for_selector("#status[data-status=connected]", state="attached", timeout=30_000)
            deadline = time.monotonic() + LEAD_S + duration_s
            face_at = None
            while time.monotonic() < deadline:
                mine = [(t, d) for t, _, d in log.snapshot(start) if d["session_id"] == sid]
                if face_at is None:
                    face_at = next((t for t, d in mine if d["metrics"]["face"]["detected"]), None)
                if face_at is not None and time.monotonic() > face_at + duration_s + 0.5:
                    break
                time.sleep(0.5)
        finally:
            browser.close()
    stack.post("/api/end_session", {"session_id": sid})
    return [(t, d) for t, _, d in log.snapshot(start) if d["session_id"] == sid]


def bench_client(heart_rates: list[float], duration_s: float, kbps: int) -> dict:
    whip_port = free_port()
    scores: list[ClipScore] = []
    nopulse: list[ClipScore] = []
    started = time.perf_counter()
    total = duration_s + LEAD_S
    with tempfile.TemporaryDirectory(prefix="rppg-client-") as tmp, local_stack(
        1, MEDIAMTX_WHIP_URL=f"http://127.0.0.1:{whip_port}"
    ) as stack:
        relay = stack.rtsp.publish_url("").rstrip("/")
        with WhipStandin(auth_url=f"{stack.base}/api/mediamtx/auth", relay_rtsp=relay).start(port=whip_port):
            log = UpdateLog(stack.base, stack.monitor_token())
            try:

                def run(hr: float, motion: bool, seed: int) -> ClipScore:
                    pulse = simulate_pulse(total, hr, seed=seed, steady=True) if hr else None
                    frames = face_frames(int(total * FPS), FPS, pulse=pulse, motion=motion, drift=0.02, seed=seed, noise=NOISE)
                    chromium_args = fake_camera_args(frames, FPS, Path(tmp) / "camera.y4m")
                    updates = _run_clip(stack, log, chromium_args, kbps, duration_s)
                    return _score(updates, hr, motion, duration_s, f"client_{kbps}k")

                for k, hr in enumerate(heart_rates):
                    for motion in (False, True):
                        scores.append(run(hr, motion, k))
                for motion in (False, True):
                    nopulse.append(run(0.0, motion, 99))
            finally:
                log.close()
    return {
        "heart_rates_bpm": heart_rates,
        "clip_seconds": duration_s,
        "scored_after_s": SCORE_AFTER_S,
        "max_video_kbps": kbps,
        "all": _summary(scores),
        "static": _summary([s for s in scores if not s.motion]),
        "motion": _summary([s for s in scores if s.motion]),
        "per_clip": [
            {
                "hr_bpm": s.hr_bpm,
                "motion": s.motion,
                "first_hr_s": s.first_hr_s,
                "mae_bpm": round(float(np.mean(s.errors)), 2) if s.errors else None,
                "coverage": round(len(s.errors) / s.estimates, 3) if s.estimates else None,
            }
            for s in scores
        ],
        "no_pulse": _no_pulse_summary(nopulse),
        "seconds": round(time.perf_counter() - started, 1),
    }
