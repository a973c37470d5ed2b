"""教师墙：三路真实流（人脸、空座位、两个人）经真实的工作进程、网关与 Redis，无头 Chromium 打开 /monitor。

卡片显示考生与考试、与事件一致的值；有第二个人的会话风险分最高、排在第一，并出现在实时告警里，点击告警打开它的会话页。
两个页面的截图存为测试产物（``TEST_ARTIFACTS_DIR``，默认 test-artifacts/）。
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import Browser, expect

from shared import events as ev
from tests.conftest import Clips, Stack

WORKER_PROCESSES = 1


def _create(stack: Stack, clip: Path, exam: str, student: str) -> str:
    name = f"exam-{exam}-user-{student}"
    stack.publish(clip, name)
    resp = stack.post(
        "/api/create_session", {"exam_id": exam, "student_id": student, "rtsp_url": stack.rtsp.read_url(name)}
    )
    assert resp.status_code == 201, resp.text
    stack.streams.append(name)
    return resp.json()["session_id"]


def test_wall_ranks_the_second_person_first_and_lists_it_in_the_alerts(
    stack: Stack, clips: Clips, browser: Browser, artifacts_dir: Path
) -> None:
    exam = f"math-{uuid.uuid4().hex[:6]}"
    monitor = stack.recorder(ev.NS_MONITOR)
    # 两个人的会话先开始：它的多人异常总比空座位的无人脸异常早、长，排序不取决于谁先到
    carol = _create(stack, clips.two_faces, exam, "carol")
    monitor.wait_for(
        ev.MONITOR_UPDATE,
        lambda d: d["session_id"] == carol and any(a["code"] == "MULTI_FACE" for a in d["anomalies"]),
        timeout=30,
    )
    alice = _create(stack, clips.face, exam, "alice")
    bob = _create(stack, clips.empty, exam, "bob")
    bob_update = monitor.wait_for(
        ev.MONITOR_UPDATE, lambda d: d["session_id"] == bob and any(a["code"] == "NO_FACE" for a in d["anomalies"]),
        timeout=30,
    )
    alice_update = monitor.wait_for(
        ev.MONITOR_UPDATE, lambda d: d["session_id"] == alice and d["metrics"]["emotion"]["dominant"] is not None,
        timeout=30,
    )
    assert alice_update["student_id"] == "alice" and alice_update["exam_id"] == exam
    assert bob_update["risk"]["score"] > 0 and alice_update["risk"] == {"score": 0.0, "level": "none"}

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{stack.base_url}/monitor#token={stack.monitor_token()['token']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "up", timeout=10_000)
    cards = page.locator("#grid article")
    expect(cards).to_have_count(3, timeout=15_000)

    def card(session_id: str):  # noqa: ANN202 - Playwright Locator
        return page.locator(f'article[data-session-id="{session_id}"]')

    expect(card(carol).locator('[data-field="who"]')).to_have_text("考生 carol")
    expect(card(alice).locator(".exam")).to_have_text(f"考试 {exam}")
    expect(card(alice).locator('[data-field="face"]')).to_have_text("有人脸")
    expect(card(bob).locator('[data-field="face"]')).to_have_text("无人脸")
    expect(card(carol).locator('.badge[data-code="MULTI_FACE"]')).to_be_visible()
    expect(card(bob).locator('.badge[data-code="NO_FACE"]')).to_be_visible()
    expect(card(alice).locator('[data-field="state"]')).to_have_text("分析中")
    # 面部情绪与事件里的主导情绪一致（情绪平滑后变化很慢，取页面这一刻收到的那条）
    emotion_text = card(alice).locator('[data-field="emotion"]')
    expect(emotion_text).not_to_have_text("—", timeout=10_000)
    latest = monitor.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == alice)[-1]
    labels = {"angry": "生气", "disgust": "厌恶", "fear": "害怕", "happy": "高兴", "sad": "难过", "surprise": "惊讶",
              "neutral": "平静"}  # fmt: skip
    assert emotion_text.inner_text().split()[0] == labels[latest["metrics"]["emotion"]["dominant"]]
    expect(card(alice).locator('[data-field="risk"]')).to_have_text("0")

    # 排序（视觉顺序 data-rank，0 在最前）：有第二个人的最前，没有异常的最后；屏幕上也是这样摆的
    expect(card(carol)).to_have_attribute("data-rank", "0", timeout=5_000)
    expect(card(bob)).to_have_attribute("data-rank", "1", timeout=5_000)
    expect(card(alice)).to_have_attribute("data-rank", "2", timeout=5_000)
    boxes = [card(s).bounding_box() for s in (carol, bob, alice)]
    assert all(b is not None for b in boxes)
    assert [(b["y"], b["x"]) for b in boxes] == sorted((b["y"], b["x"]) for b in boxes), boxes
    risk = [float(card(s).locator('[data-field="risk"]').inner_text()) for s in (carol, bob, alice)]
    assert risk[0] > risk[1] > risk[2] == 0, risk
    expect(page.locator('[data-total="live"]')).to_have_text("3")
    expect(page.locator("#system")).to_contain_text(re.compile(r"工作进程 1 个 · CPU 最高 \d+%"))  # 本模块只有一个工作进程
    # 预览小图：默认马赛克（16x9 格），每张卡片都有
    for s in (carol, bob, alice):
        preview = card(s).locator("img.preview")
        expect(preview).to_be_visible(timeout=20_000)
        expect(preview).to_have_attribute("data-mode", "mosaic")
        assert (preview.get_attribute("src") or "").startswith("data:image/jpeg;base64,")

    # 实时告警：多人那条在列表里，点开是该会话的页面
    alert = page.locator(f'#alerts li[data-session-id="{carol}"][data-code="MULTI_FACE"]')
    expect(alert).to_contain_text("考生 carol")
    expect(alert).to_contain_text("多人")
    expect(page.locator(f'#alerts li[data-session-id="{bob}"][data-code="NO_FACE"]')).to_be_visible()
    assert page.locator(f'#alerts li[data-session-id="{alice}"]').count() == 0
    page.screenshot(path=str(artifacts_dir / "wall.png"), full_page=True)

    # 按考生搜索、按考试筛选
    page.fill("#search", "bob")
    expect(page.locator("#grid article:visible")).to_have_count(1)
    page.fill("#search", "")
    page.select_option("#exam-filter", exam)
    expect(page.locator("#grid article:visible")).to_have_count(3)

    alert.locator("a").click()
    page.wait_for_url(f"{stack.base_url}/monitor/sessions/{carol}")
    expect(page.locator("#title")).to_have_text("考生 carol", timeout=15_000)
    expect(page.locator('#now-anomalies .badge[data-code="MULTI_FACE"]')).to_be_visible(timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "session.png"), full_page=True)
    assert errors == []


def test_wall_shows_a_read_only_placeholder_while_the_gateway_is_down_and_recovers_without_reload(
    stack: Stack, clips: Clips, browser: Browser, artifacts_dir: Path
) -> None:
    session = _create(stack, clips.face, f"bio-{uuid.uuid4().hex[:6]}", "dave")
    page = browser.new_page()
    page.goto(f"{stack.base_url}/monitor#token={stack.monitor_token()['token']}")
    tile = page.locator(f'article[data-session-id="{session}"]')
    expect(tile.locator('[data-field="face"]')).to_have_text("有人脸", timeout=20_000)
    page.evaluate("window.notReloaded = true")

    stack.stop_gateway()
    offline = page.locator("#offline")
    expect(offline).to_be_visible(timeout=10_000)
    expect(offline).to_contain_text("最后状态（只读）")
    expect(tile.locator('[data-field="face"]')).to_have_text("有人脸")  # 最后的状态仍在
    page.screenshot(path=str(artifacts_dir / "wall-offline.png"), full_page=True)

    stack.start_gateway()
    expect(offline).to_be_hidden(timeout=20_000)
    expect(page.locator("#conn")).to_have_attribute("data-state", "up")
    expect(tile.locator('[data-field="age"]')).to_have_text("刚刚", timeout=10_000)
    assert page.evaluate("window.notReloaded") is True
