"""学生端在编码前采样的皮肤颜色：工作进程发 ``ppg.roi`` -> 学生端上传 ``ppg.samples`` -> 网关 -> Redis -> 工作进程的心率。

WebRTC 编码器会把约 0.3% 的脉搏亮度变化量化掉（docs/benchmarks.md），所以浏览器推流时心率来自学生端的采样。
最后一个测试走完整条真实路径：无头 Chromium 的假摄像头播放带 72 bpm 脉搏的合成人脸，学生端页面经网关信令
向 WHIP 端点推流（替身：``devtools/stack/whip_ingest.py``，MediaMTX 在这里无法运行；它像 MediaMTX 一样把画面转成
RTSP，这里由 rtsp-server-perl 提供），工作进程读 RTSP、检测人脸、发出采样框，页面采样上传，心率出现在 /monitor。
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
import redis
from playwright.sync_api import expect, sync_playwright

from devtools.stack.servers import fake_camera_args, free_port, require_binary
from devtools.stack.whip_ingest import WhipStandin
from devtools.synthetic import face_frames, simulate_pulse
from shared import events as ev
from tests.conftest import Clips, Stack
from tests.helpers import Heartbeats, client_ppg_rows
from workers.analysis.face import FaceDetector

WORKER_PROCESSES = 1
WHIP_PORT = free_port()
WHIP_RELAY = True  # WHIP 替身把推流转成 RTSP（rtsp-server-perl），工作进程像读 MediaMTX 一样读它
WORKER_ENV = {"MEDIAMTX_WHIP_URL": f"http://127.0.0.1:{WHIP_PORT}"}
FPS = 15.0


def _session_with_stream(stack: Stack, clip: Path | None = None) -> dict:
    """创建会话并让工作进程分析它的流（clip 为 None 时流由别处推上来，例如 WHIP 替身转推）。"""
    name = f"exam-{time.monotonic_ns()}-user-ppg"
    if clip is not None:
        name, _ = stack.publish(clip, name)
    created = stack.post("/api/create_session", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)})
    assert created.status_code == 201, created.text
    stack.streams.append(name)
    return created.json()


def test_samples_are_validated_and_only_the_sessions_own_student_may_send(stack: Stack) -> None:
    session = stack.post("/api/create_session", {}).json()
    sid = session["session_id"]
    student = stack.student(session)
    rows = [[1000.0 + 66.7 * i, 180.0, 130.0, 110.0 + i / 100] for i in range(15)]

    ack = student.call(ev.PPG_SAMPLES, {"session_id": sid, "roi_seq": 1, "samples": rows})
    assert ack == {"ok": True, "accepted": 15, "error": None}
    bad = student.call(ev.PPG_SAMPLES, {"session_id": sid, "samples": [[5.0, 1, 2, 3], [4.0, 1, 2, 3]]})
    assert bad["ok"] is False and "t_ms" in bad["error"]
    empty = student.call(ev.PPG_SAMPLES, {"session_id": sid, "samples": []})
    assert empty["ok"] is False and "samples" in empty["error"]
    stranger = stack.student(stack.post("/api/create_session", {}).json())  # 另一个会话的学生端
    refused = stranger.call(ev.PPG_SAMPLES, {"session_id": sid, "samples": rows})
    assert refused["ok"] is False and refused["error"].startswith("forbidden")

    # 只有通过校验的那一批进了该会话的样本流（行原样保存），并且带过期时间
    r = redis.Redis.from_url(stack.redis.url)
    key = f"{stack.env['KEY_PREFIX']}ppg:{sid}"
    entries = r.xrange(key)
    assert len(entries) == 1 and 0 < r.ttl(key) <= 120
    r.close()
    stack.post("/api/end_session", {"session_id": sid})
    after = student.call(ev.PPG_SAMPLES, {"session_id": sid, "samples": rows})
    assert after["ok"] is False and after["error"].startswith("session_ended")


def test_worker_sends_roi_and_turns_uploaded_samples_into_heart_rate(stack: Stack, clips: Clips) -> None:
    session = _session_with_stream(stack, clips.face)
    sid = session["session_id"]
    student = stack.student(session)
    beats = Heartbeats(student, sid)  # 心跳让学生端连接进入会话房间
    beats.start()
    monitor = stack.recorder(ev.NS_MONITOR)
    try:
        roi = student.wait_for(ev.PPG_ROI, lambda d: d["session_id"] == sid and d["roi"] is not None, timeout=30)
        x0, y0, x1, y1 = roi["roi"]
        assert 0 <= x0 < 0.5 < x1 <= 1 and 0 <= y0 < 0.5 < y1 <= 1, roi  # 框住画面中部的人脸（相对坐标）

        # 14 秒 84 bpm 的学生端样本，每批 1 秒（发送比实时快：估计只看样本自身的时间戳）
        rows = client_ppg_rows(FaceDetector(), 84.0, 14.0, seed=4)
        sent_at = time.monotonic()
        for start in range(0, len(rows), 15):
            ack = student.call(ev.PPG_SAMPLES, {"session_id": sid, "roi_seq": roi["seq"], "samples": rows[start : start + 15]})
            assert ack["ok"], ack
            time.sleep(0.1)
        update = monitor.wait_for(
            ev.MONITOR_UPDATE,
            lambda d: d["session_id"] == sid and d["metrics"]["ppg"]["source"] == "client" and d["metrics"]["ppg"]["hr_bpm"],
            timeout=10,
            since=sent_at,
        )
        assert abs(update["metrics"]["ppg"]["hr_bpm"] - 84.0) <= 3.0, update["metrics"]["ppg"]
        heart = monitor.wait_for(
            ev.HEART_RATE_RESULT,
            # 样本刚开始到达、窗口还不够时也会有 source=client 而 hr_bpm 为 null 的心率事件：等给出心率的那一条
            lambda d: d["session_id"] == sid and d["result"]["source"] == "client" and d["result"]["hr_bpm"] is not None,
            timeout=10,
            since=sent_at,
        )
        assert abs(heart["result"]["hr_bpm"] - 84.0) <= 3.0

        # 样本停止：几秒后回到解码视频的估计（这段视频没有脉搏，所以心率为 null 并附原因）
        stopped = time.monotonic()
        fallback = monitor.wait_for(
            ev.MONITOR_UPDATE,
            lambda d: d["session_id"] == sid and d["metrics"]["ppg"]["source"] in ("video", None),
            timeout=10,
            since=stopped + 3.0,
        )
        assert fallback["metrics"]["ppg"]["hr_bpm"] is None and "ppg.hr_bpm" in fallback["null_reasons"]
    finally:
        beats.stop()


@pytest.fixture(scope="module")
def pulse_camera(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Chromium 的启动参数：假摄像头循环播放真实人脸（y4m），带轻微头部运动与光照漂移，72 bpm 脉搏。"""
    seconds = 45.0
    pulse = simulate_pulse(seconds, 72.0, seed=11, steady=True)
    frames = face_frames(int(seconds * FPS), FPS, pulse=pulse, motion=True, drift=0.02, seed=11, noise=4.0)
    return fake_camera_args(frames, FPS, tmp_path_factory.mktemp("camera") / "pulse72.y4m")


@pytest.mark.browser
def test_browser_samples_the_camera_before_encoding_and_heart_rate_reaches_the_monitor(
    stack: Stack, whip: WhipStandin, pulse_camera: list[str]
) -> None:
    session = _session_with_stream(stack)
    sid = session["session_id"]
    monitor = stack.recorder(ev.NS_MONITOR)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=require_binary("chromium"), args=pulse_camera)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # 学生端视频码率上限 1 Mbit/s：画面经过浏览器自己的 H.264/VP8 编码器
            page.goto(f"{stack.base_url}/student-demo?session_id={sid}#publish_token={session['publish_token']}")
            page.click("#start")
            expect(page.locator("#status")).to_have_attribute("data-status", "connected", timeout=30_000)
            face_seen = monitor.wait_for(
                ev.MONITOR_UPDATE, lambda d: d["session_id"] == sid and d["metrics"]["face"]["detected"], timeout=40
            )
            face_at = time.monotonic()
            first = monitor.wait_for(
                ev.MONITOR_UPDATE,
                lambda d: d["session_id"] == sid and d["metrics"]["ppg"]["source"] == "client" and d["metrics"]["ppg"]["hr_bpm"],
                timeout=30,
            )
            first_after_s = time.monotonic() - face_at
            # 教师监控页上同一会话的心率标明来自学生端采样
            teacher = browser.new_page()
            teacher.goto(f"{stack.base_url}/monitor#token={stack.monitor_token()['token']}")
            hr_cell = teacher.locator(f'article[data-session-id="{sid}"] [data-field="hr"]')
            expect(hr_cell).to_contain_text("学生端采样", timeout=10_000)
            time.sleep(6)
        finally:
            browser.close()
    assert face_seen["metrics"]["face"]["detected"]
    estimates = [
        d["metrics"]["ppg"]["hr_bpm"]
        for d in monitor.matching(
            ev.MONITOR_UPDATE, lambda d: d["session_id"] == sid and d["metrics"]["ppg"]["source"] == "client"
        )
        if d["metrics"]["ppg"]["hr_bpm"] is not None
    ]
    assert first["metrics"]["ppg"]["hr_bpm"] is not None and first_after_s <= 12.0, first_after_s
    assert len(estimates) >= 10, estimates
    assert abs(statistics.median(estimates) - 72.0) <= 3.0 and all(abs(e - 72.0) <= 5.0 for e in estimates), estimates
    assert errors == []
