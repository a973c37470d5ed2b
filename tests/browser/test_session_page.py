"""会话页：一路真实流（考生时而离开座位）经真实的工作进程、网关与 Redis，两个教师的无头 Chromium 打开它的会话页。

图表里有页面打开之前的历史（来自服务端的时间序列），之后追加实时的点；一个页面里标记“已复核”并写备注，
另一个页面立即看到；``end_session`` 之后两个页面都显示报告，数字与 REST 的报告一致。
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from devtools.stack.servers import encode_clip
from devtools.synthetic import empty_frames, face_frames
from shared import events as ev
from tests.conftest import Stack

WORKER_PROCESSES = 1


@pytest.fixture(scope="module")
def leaving_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 秒有人、4.5 秒空座位，循环播放：每一轮有一段结束了的 NO_FACE。"""
    frames = [*face_frames(90), *empty_frames(68)]
    return encode_clip(tmp_path_factory.mktemp("leaving") / "leaving.mp4", frames)


def _wait_stat(page: Page, name: str, at_least: int, timeout: float = 10.0) -> int:
    """轮询页面的诊断计数（页面的 CSP 不允许 wait_for_function 用的 eval）。"""
    deadline = time.monotonic() + timeout
    while (value := page.evaluate(f"window.sessionStats.{name}")) < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
    assert value >= at_least, f"{name} = {value}"
    return value


def _open(browser: Browser, stack: Stack, session_id: str, teacher: str) -> Page:
    page = browser.new_page(viewport={"width": 1300, "height": 1400})
    page.goto(f"{stack.base_url}/monitor/sessions/{session_id}#token={stack.monitor_token(teacher)['token']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "up", timeout=10_000)
    return page


def test_session_page_shows_history_live_points_shared_reviews_and_the_report(
    stack: Stack, leaving_clip: Path, browser: Browser, artifacts_dir: Path
) -> None:
    exam, name = f"chem-{uuid.uuid4().hex[:6]}", "erin"
    stream = f"exam-{exam}-user-{name}"
    stack.publish(leaving_clip, stream)
    resp = stack.post("/api/create_session", {"exam_id": exam, "student_id": name, "rtsp_url": stack.rtsp.read_url(stream)})
    assert resp.status_code == 201, resp.text
    stack.streams.append(stream)
    session = resp.json()["session_id"]

    # 等到有一段 NO_FACE 结束、写进了汇总（报告里有这一段），此时已有十几秒的时间序列
    deadline = time.monotonic() + 60
    episodes: list[dict] = []
    while not episodes and time.monotonic() < deadline:
        time.sleep(1)
        report = stack.get(f"/api/sessions/{session}/report").json()
        episodes = [ep for ep in report["anomalies"] if ep["code"] == "NO_FACE"]
    assert episodes, f"60 秒内没有结束的 NO_FACE 事件段：{report}"
    opened_ms = time.time() * 1000

    first = _open(browser, stack, session, "teacher-a")
    errors: list[str] = []
    first.on("pageerror", lambda exc: errors.append(str(exc)))
    expect(first.locator("#title")).to_have_text(f"考生 {name}", timeout=10_000)
    expect(first.locator("#exam")).to_have_text(f"考试 {exam}")
    stats = first.evaluate("window.sessionStats")
    assert stats["points"] >= 5, stats  # 每 2 秒一个点
    assert stats["first_point_ms"] < opened_ms - 8000, stats  # 页面打开之前的历史
    _wait_stat(first, "live_points", 3)
    assert first.evaluate("window.sessionStats.points") > stats["points"]
    expect(first.locator("#state")).to_have_text("分析中")
    expect(first.locator('[data-now="attention"]')).not_to_have_text("—")
    assert first.locator(".u-wrap canvas").count() == 4  # 四张图都画出来了

    second = _open(browser, stack, session, "teacher-b")
    row_id = episodes[0]["episode_id"]
    assert row_id == f"NO_FACE@{episodes[0]['start']}"
    row_a = first.locator(f'#episodes tr[data-episode-id="{row_id}"]')
    row_b = second.locator(f'#episodes tr[data-episode-id="{row_id}"]')
    expect(row_a).to_contain_text("无人脸")
    expect(row_b.locator(".reviewed")).not_to_be_checked()

    row_a.locator(".reviewed").check()
    row_a.locator(".note").fill("起身离开座位，已与监考老师核实")
    row_a.locator(".save").click()
    expect(row_a.locator(".save")).to_have_text("已保存")
    # 另一个教师的页面经 monitor.review 立即看到（不刷新）
    expect(row_b.locator(".reviewed")).to_be_checked(timeout=5_000)
    expect(row_b.locator(".note")).to_have_value("起身离开座位，已与监考老师核实")
    expect(row_b.locator(".by")).to_contain_text("teacher-a")
    expect(row_b).to_have_class("reviewed")
    first.screenshot(path=str(artifacts_dir / "session-live.png"), full_page=True)

    # 会话结束：两个页面都显示定稿的报告，与 REST 返回的一致；复核标记仍在
    ended = stack.post("/api/end_session", {"session_id": session})
    assert ended.status_code == 200, ended.text
    final = ended.json()
    stack.streams.remove(stream)
    for page in (first, second):
        expect(page.locator("#report")).to_be_visible(timeout=10_000)
        expect(page.locator("#state")).to_have_text("已结束")
        expect(page.locator('[data-report="anomalies"]')).to_have_text(str(len(final["anomalies"])))
        # 页面取整（JS 的 toFixed 与 Python 的舍入在 .5 处不同）：差不超过 0.5
        shown_s = float(page.locator('[data-report="streaming_seconds"]').inner_text().removesuffix(" 秒"))
        assert abs(shown_s - final["streaming_seconds"]) <= 0.5, (shown_s, final["streaming_seconds"])
        shown_pct = float(page.locator('[data-report="attention_mean"]').inner_text().removesuffix("%"))
        assert abs(shown_pct - 100 * final["attention_mean"]) <= 0.5, (shown_pct, final["attention_mean"])
        expect(page.locator(f'#episodes tr[data-episode-id="{row_id}"] .reviewed')).to_be_checked()
    second.screenshot(path=str(artifacts_dir / "session-report.png"), full_page=True)
    assert errors == []


def test_review_refuses_unknown_episodes_and_other_exams(stack: Stack, leaving_clip: Path) -> None:
    """复核标记只能标在自己能看的会话里已结束的事件段上；限定别的考试的令牌被拒绝。"""
    resp = stack.post("/api/create_session", {"exam_id": "phys-1", "student_id": "finn"})
    assert resp.status_code == 201, resp.text
    session = resp.json()["session_id"]
    teacher = stack.recorder(ev.NS_MONITOR)
    missing = teacher.call(ev.MONITOR_REVIEW, {"session_id": session, "episode_id": "NO_FACE@2026-01-01T00:00:00.000Z",
                                               "reviewed": True})
    assert missing["ok"] is False and "没有已结束的事件段" in missing["error"]
    bad = teacher.call(ev.MONITOR_REVIEW, {"session_id": session, "episode_id": "x", "reviewed": "yes"})
    assert bad["ok"] is False and bad["error"]
    timeline = teacher.call(ev.MONITOR_TIMELINE, {"session_id": session})
    assert timeline["ok"] is True and timeline["status"] == "CREATED" and timeline["history"]["t_ms"] == []

    other = stack.recorder(ev.NS_MONITOR, auth={"token": stack.monitor_token("t-other", exam_id="bio-9")["token"]})
    refused = other.call(ev.MONITOR_TIMELINE, {"session_id": session})
    assert refused["ok"] is False and refused["error"].startswith("forbidden")
