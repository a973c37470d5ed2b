"""学生端演示页：真实无头 Chromium（假摄像头与麦克风）经网关信令中继与 WHIP 端点建立真实的 WebRTC 连接。

WHIP 端点是 ``devtools/stack/whip_ingest.py``：基于 aiortc 的 MediaMTX 替身（MediaMTX 在这里无法运行），
它像 MediaMTX 一样先调用网关的鉴权接口，再应答 offer，并统计收到的音视频帧。
"""

from __future__ import annotations

import time

import httpx
import redis
from playwright.sync_api import Browser, Page, expect

from devtools.stack.servers import free_port
from devtools.stack.whip_ingest import WhipStandin
from tests.conftest import API_KEY, Stack
from tests.helpers import wait_until

WORKER_PROCESSES = 0  # 只测网关与学生端
WHIP_PORT = free_port()
WORKER_ENV = {"MEDIAMTX_WHIP_URL": f"http://127.0.0.1:{WHIP_PORT}", "WHIP_TIMEOUT_S": "3"}
RETRY_BASE_MS = 300


def _open(browser: Browser, stack: Stack, errors: list[str], session: dict | None = None) -> Page:
    """打开学生端演示页；给出会话时预填它的 session_id 与推流令牌。"""
    page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    query = f"&session_id={session['session_id']}#publish_token={session['publish_token']}" if session else ""
    page.goto(f"{stack.base_url}/student-demo?retry_base_ms={RETRY_BASE_MS}{query}")
    assert "publish_token" not in page.url  # 令牌读出后从地址栏去掉
    return page


def _path_sessions(whip: WhipStandin, path: str) -> list[dict]:
    return [s for s in whip.stats()["sessions"] if s["path"] == path]


def test_student_page_publishes_camera_and_microphone_and_closes(
    stack: Stack, whip: WhipStandin, browser: Browser
) -> None:
    errors: list[str] = []
    page = _open(browser, stack, errors)
    page.fill("#api-key", API_KEY)
    page.click("#create")
    expect(page.locator("#session-id")).not_to_have_value("", timeout=10_000)
    session_id = page.input_value("#session-id")
    stream_name = stack.get(f"/api/sessions/{session_id}/report").json()["stream_name"]

    page.click("#start")
    expect(page.locator("#status")).to_have_attribute("data-status", "connected", timeout=30_000)
    # 媒体真的到达了 WHIP 端点：视频与音频帧都在增加
    media = wait_until(
        lambda: next((s for s in _path_sessions(whip, stream_name) if s["video_frames"] > 30 and s["audio_frames"] > 20), None),
        20,
        "WHIP 端点没有收到足够的音视频帧",
    )
    assert media["video_codec"] in ("H264", "VP8"), media
    assert media["connection_state"] == "connected"
    report = stack.get(f"/api/sessions/{session_id}/report").json()
    assert report["status"] == "ACTIVE"
    # 学生端每 2 秒一次心跳：网关记录了它（会话在心跳集合里）
    beats = redis.Redis.from_url(stack.redis.url)
    assert beats.zscore(f"{stack.env['KEY_PREFIX']}heartbeats", session_id) is not None
    beats.close()
    expect(page.locator("#notice")).to_be_hidden()

    page.click("#submit")
    expect(page.locator("#status")).to_have_attribute("data-status", "closed", timeout=10_000)
    wait_until(lambda: all(s["deleted"] for s in _path_sessions(whip, stream_name)), 10, "交卷后 WHIP 端点没有收到 DELETE")
    assert len(_path_sessions(whip, stream_name)) == 1  # 一次连接，没有多余的重试
    assert errors == []


def test_media_server_failure_degrades_after_three_retries_without_hurting_others(
    stack: Stack, whip: WhipStandin, browser: Browser
) -> None:
    errors: list[str] = []
    healthy = stack.post("/api/create_session", {}).json()
    page_ok = _open(browser, stack, errors, healthy)
    page_ok.click("#start")
    expect(page_ok.locator("#status")).to_have_attribute("data-status", "connected", timeout=30_000)

    # 先 500（端点在，已建立的推流不受影响），再整个端点宕机
    for break_it, restore, endpoint_up in [
        (lambda: whip.set_mode("error500"), lambda: whip.set_mode("ok"), True),
        (whip.stop, lambda: whip.start(port=WHIP_PORT), False),
    ]:
        victim = stack.post("/api/create_session", {}).json()
        break_it()
        try:
            posts_before = whip.stats()["posts"] if endpoint_up else None
            page = _open(browser, stack, errors, victim)
            started = time.monotonic()
            page.click("#start")
            expect(page.locator("#status")).to_have_attribute("data-status", "unavailable", timeout=30_000)
            elapsed = time.monotonic() - started
            # 3 次重试的退避共 0.3 + 0.6 + 1.2 s
            assert elapsed >= 7 * RETRY_BASE_MS / 1000 - 0.2, elapsed
            expect(page.locator("#notice")).to_be_visible()
            expect(page.locator("#notice")).to_contain_text("AI 监考暂不可用")
            if posts_before is not None:
                assert whip.stats()["posts"] - posts_before == 4  # 第一次 + 3 次重试
            # 其他会话不受影响：网关健康、照常创建会话；端点还在时已连接的学生仍在推流
            assert httpx.get(f"{stack.base_url}/api/health", timeout=5).status_code == 200
            assert stack.post("/api/create_session", {}).status_code == 201
            if endpoint_up:
                expect(page_ok.locator("#status")).to_have_attribute("data-status", "connected")
            page.close()
        finally:
            restore()
    assert errors == []


def test_student_page_survives_a_gateway_restart_and_renegotiates_after_media_failure(
    stack: Stack, whip: WhipStandin, browser: Browser
) -> None:
    errors: list[str] = []
    session = stack.post("/api/create_session", {}).json()
    page = _open(browser, stack, errors, session)
    page.click("#start")
    status = page.locator("#status")
    expect(status).to_have_attribute("data-status", "connected", timeout=30_000)
    beats = redis.Redis.from_url(stack.redis.url)
    key = f"{stack.env['KEY_PREFIX']}heartbeats"

    # 网关重启（Socket.IO 断开）：媒体不经过网关，推流继续；Socket 自动重连，心跳恢复
    stack.restart_gateway()
    restarted_ms = time.time() * 1000
    wait_until(lambda: (beats.zscore(key, session["session_id"]) or 0) > restarted_ms, 15, "网关重启后心跳没有恢复")
    expect(status).to_have_attribute("data-status", "connected")
    assert len(_path_sessions(whip, session["stream_name"])) == 1  # 媒体仍连通：不重新发起

    # 媒体故障（媒体服务器关闭了连接）：学生端自动重新协商一次，回到 connected
    page.evaluate(
        "window.seen = []; window.proctorClient.addEventListener('status', (e) => window.seen.push(e.detail.status))"
    )
    assert whip.drop(session["stream_name"]) == 1
    # 在 Python 这边轮询（页面的 CSP 不允许 eval，Playwright 的 wait_for_function 要在页面里编译表达式）
    seen = lambda: page.evaluate("window.seen.join()") == "reconnecting,connected"  # noqa: E731
    wait_until(seen, 40, "媒体故障后没有经 reconnecting 回到 connected")
    fresh = wait_until(
        lambda: next((s for s in _path_sessions(whip, session["stream_name"])[1:] if s["video_frames"] > 10), None),
        15,
        "重新协商后 WHIP 端点没有收到新的媒体",
    )
    assert fresh["connection_state"] == "connected"
    beats.close()
    page.close()
    assert errors == []
