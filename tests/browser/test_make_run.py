"""``make run``：一条命令起全套服务与演示考生，/monitor 一分钟内看到每种异常；假摄像头的 Chromium 打开打印出的
学生端演示页，经嵌入式媒体入口推流，出现在墙上；SIGINT 后干净退出。"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
from playwright.sync_api import expect, sync_playwright

from devtools.stack.demo import HEART_RATE_BPM, SCRIPT
from devtools.stack.processes import monitor_token
from devtools.stack.servers import fake_camera_args, fake_microphone_arg, free_port, port_is_free, require_binary
from devtools.synthetic import face_frames, voice_pcm
from shared import events as ev
from tests.helpers import Recorder, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _group_alive(pgid: int) -> list[psutil.Process]:
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def _printed(log: Path, label: str) -> str | None:
    """make run 打印的某一行里 ``label`` 之后的地址。"""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(label):
            return line[line.index("http") :].strip()
    return None


def test_make_run_serves_live_demo_and_stops_on_sigint(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MAKEFLAGS", "MFLAGS")}
    env.update(
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        API_KEY="make-run-test-key",
        DEVSTACK_DIR=str(tmp_path / "devstack"),
        KEY_PREFIX="makerun:",
    )
    log = (tmp_path / "make-run.log").open("wb")
    proc = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    recorder = None
    try:
        base = f"http://127.0.0.1:{port}"

        def connect() -> Recorder | None:
            assert proc.poll() is None, (tmp_path / "make-run.log").read_text()
            try:
                token = monitor_token(base, "make-run-test-key", teacher="make-run-test")["token"]
                return Recorder(base, ev.NS_MONITOR, auth={"token": token})
            except Exception:  # noqa: BLE001 - 网关尚未就绪
                return None

        recorder = wait_until(connect, timeout=120, message="make run 的网关可连接", interval=0.5)
        connected = time.monotonic()
        update = recorder.wait_for(ev.MONITOR_UPDATE, lambda d: d["metrics"]["face"]["detected"], timeout=60)
        assert update["models"][:2] == ["face", "attention"]
        # 网关可连接后 60 秒内（含第一次运行时生成演示片段）：每个演示考生都有数据，墙上出现了脚本里的每种异常
        wanted = {"MULTI_FACE", "NO_FACE", "TALKING", "LOOK_AWAY", "LOOKING_DOWN", "OCCLUSION"}

        def seen() -> set[str] | None:
            updates = recorder.matching(ev.MONITOR_UPDATE)
            students = {u["student_id"] for u in updates}
            codes = {a["code"] for u in updates for a in u["anomalies"]}
            return codes if students >= demo_students and wanted <= codes else None

        demo_students = {f"s{i:02d}" for i in range(1, len(SCRIPT) + 1)}  # DEMO_STREAMS 默认与脚本的情况一样多
        wait_until(seen, timeout=max(1.0, 60 - (time.monotonic() - connected)), message="每个演示考生与每种异常")
        updates = recorder.matching(ev.MONITOR_UPDATE)
        assert {u["student_id"] for u in updates} == demo_students
        assert all(u["exam_id"] == updates[0]["exam_id"] for u in updates)  # 同一场考试
        assert any(u["metrics"]["audio"]["level_dbfs"] is not None for u in updates)  # 有音轨
        pulse = recorder.wait_for(ev.MONITOR_UPDATE, lambda d: d["metrics"]["ppg"]["hr_bpm"] is not None, timeout=45)
        assert abs(pulse["metrics"]["ppg"]["hr_bpm"] - HEART_RATE_BPM) <= 6, pulse["metrics"]["ppg"]  # 皮肤里的脉搏

        # 学生端演示页在本机能推流：假摄像头（真实人脸）与假麦克风（嗓音）的 Chromium 打开 make run 打印的地址，
        # 经嵌入式媒体入口（WHIP -> RTSP，音视频）到工作进程，出现在墙上：检测到人脸，也有音量
        url = wait_until(lambda: _printed(tmp_path / "make-run.log", "学生端演示页"), timeout=10, message="演示页地址")
        camera = fake_camera_args(face_frames(150), 15.0, tmp_path / "camera.y4m")
        microphone = fake_microphone_arg(voice_pcm(10.0, sample_rate=48000), 48000, tmp_path / "voice.wav")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=require_binary("chromium"), args=[*camera, microphone])
            try:
                page = browser.new_page()
                page.goto(url)
                page.click("#start")
                expect(page.locator("#status")).to_have_attribute("data-status", "connected", timeout=30_000)
                you = recorder.wait_for(
                    ev.MONITOR_UPDATE,
                    lambda d: d["student_id"] == "you" and d["metrics"]["face"]["detected"]
                    and d["metrics"]["audio"]["level_dbfs"] is not None,
                    timeout=45,
                )
            finally:
                browser.close()
        assert you["exam_id"] == updates[0]["exam_id"]
        assert you["metrics"]["audio"]["level_dbfs"] > -40, you["metrics"]["audio"]  # 嗓音的电平，不是静音
    finally:
        if recorder is not None:
            recorder.close()
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=40)
        finally:
            leftovers = _group_alive(proc.pid)
            for p in leftovers:
                p.kill()
            log.close()
    assert leftovers == [], [p.cmdline() for p in leftovers]
    assert port_is_free(port)
    text = (tmp_path / "make-run.log").read_text()
    assert "all stopped" in text, text[-2000:]
