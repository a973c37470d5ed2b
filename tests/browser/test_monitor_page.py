"""监控页面：真实无头 Chromium 打开 /monitor，看到实时数据；会话页只收该会话的数据。"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from shared import events as ev
from tests.conftest import Clips, Stack

WORKER_PROCESSES = 1

def test_monitor_page_shows_live_sessions(stack: Stack, clips: Clips, browser: Browser, tmp_path: Path) -> None:
    face_name, _ = stack.publish(clips.face)
    empty_name, _ = stack.publish(clips.empty)
    created = stack.post("/api/create_session", {"stream_name": face_name, "rtsp_url": stack.rtsp.read_url(face_name)})
    assert created.status_code == 201, created.text
    stack.streams.append(face_name)
    face_session = created.json()["session_id"]
    empty_session = stack.start_stream(empty_name)["session_id"]
    # 确认数据已在流动，再打开页面
    probe = stack.recorder(ev.NS_MONITOR)
    probe.wait_for(ev.MONITOR_UPDATE, lambda d: d["session_id"] == empty_session, timeout=20)

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{stack.base_url}/monitor#token={stack.monitor_token()['token']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "up", timeout=10_000)
    assert page.url == f"{stack.base_url}/monitor"  # 令牌读出后从地址栏去掉
    face_card = page.locator(f'article[data-session-id="{face_session}"]')
    empty_card = page.locator(f'article[data-session-id="{empty_session}"]')
    expect(face_card.locator('[data-field="face"]')).to_have_text("有人脸", timeout=15_000)
    expect(empty_card.locator('[data-field="face"]')).to_have_text("无人脸", timeout=15_000)
    expect(empty_card).to_have_class("card alert")
    expect(face_card.locator('[data-field="audio_level"]')).to_have_text("无音轨")  # 测试片段没有音轨
    expect(page.locator("#summary")).to_contain_text("在线 2", timeout=5_000)
    page.screenshot(path=str(tmp_path / "monitor.png"))  # 失败排查用

    # 会话页（同一标签页里打开，令牌在 sessionStorage 中）：没有考生编号时标题是流名，只收这一路的实时数据
    single = page
    single.goto(f"{stack.base_url}/monitor/sessions/{face_session}")
    expect(single.locator("#title")).to_have_text(face_name, timeout=15_000)
    expect(single.locator("#state")).to_have_text("分析中", timeout=10_000)
    expect(single.locator('[data-now="latency"]')).to_contain_text("ms", timeout=10_000)  # 收到了实时数据
    assert errors == []


def test_monitor_page_without_a_valid_token_shows_why_and_no_data(stack: Stack, clips: Clips, browser: Browser) -> None:
    name, _ = stack.publish(clips.face)
    stack.start_stream(name)
    stack.recorder(ev.NS_MONITOR).wait_for(ev.MONITOR_UPDATE, timeout=20)  # 数据在流动
    for suffix, reason, text in [
        ("", "token_missing", "需要监控令牌"),
        ("#token=forged.token.value", "token_invalid", "监控令牌无效"),
    ]:
        page = browser.new_page()
        page.goto(f"{stack.base_url}/monitor{suffix}")
        expect(page.locator("#conn")).to_have_attribute("data-reason", reason, timeout=10_000)
        expect(page.locator("#conn")).to_contain_text(text)
        page.wait_for_timeout(1500)
        assert page.locator("article").count() == 0
        page.close()
