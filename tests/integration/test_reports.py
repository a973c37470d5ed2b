"""会话报告与媒体状态：真实片段（人脸 -> 离开 -> 回来说话）经 RTSP 与工作进程，汇总写入 Redis，
end_session 定稿报告；推流中断 12 秒 -> DEGRADED，恢复 -> STREAMING（同一会话）。"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from devtools.stack.servers import ClipPublisher, encode_clip
from devtools.synthetic import empty_frames, face_frames, speech_pcm
from shared import events as ev
from shared.api import SessionReport
from shared.risk import RiskEvent, risk_score
from tests.conftest import Stack
from tests.helpers import Heartbeats, wait_until
from workers.analysis.audio import SAMPLE_RATE

WORKER_PROCESSES = 1
HEARTBEAT_TIMEOUT_S = 4.0
NO_MEDIA_TIMEOUT_S = 8.0
# 网关与工作进程共用同一组环境变量
WORKER_ENV = {"HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S), "NO_MEDIA_TIMEOUT_S": str(NO_MEDIA_TIMEOUT_S)}
FPS = 15.0


@pytest.fixture(scope="module")
def exam_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 秒正常作答 + 5 秒离开座位 + 回来后说话（约 6 秒），循环推流。"""
    rng = np.random.default_rng(5)
    speech = speech_pcm("请问这道题是什么意思，我可以看一下书吗？")
    back_s = max(6.0, len(speech) / SAMPLE_RATE + 1.0)
    frames = [
        *face_frames(int(6 * FPS), FPS, seed=5),
        *empty_frames(int(5 * FPS), FPS, seed=5),
        *face_frames(int(back_s * FPS), FPS, seed=6),
    ]
    total = len(frames) / FPS
    hiss = lambda s: rng.normal(0, 30, int(s * SAMPLE_RATE)).astype(np.int16)  # noqa: E731
    audio = np.concatenate([hiss(11.0), speech, hiss(total - 11.0 - len(speech) / SAMPLE_RATE)])
    return encode_clip(tmp_path_factory.mktemp("exam") / "exam.mp4", frames, fps=FPS, gop=30, audio=audio)


def _report(stack: Stack, session_id: str) -> SessionReport:
    resp = stack.get(f"/api/sessions/{session_id}/report")
    assert resp.status_code == 200, resp.text
    return SessionReport.model_validate(resp.json())


def test_report_summarises_the_session_and_media_outage_degrades_it(stack: Stack, exam_clip: Path) -> None:
    name, publisher = stack.publish(exam_clip)
    monitor = stack.recorder(ev.NS_MONITOR)
    created = stack.post("/api/create_session", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)})
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    stack.streams.append(name)
    student = stack.student(created.json())  # 学生页：心跳并接收 signal.close
    beats = Heartbeats(student, session_id)
    beats.start()

    # 情绪模型加载完成后再跑满一个循环（约 17 秒），报告里才有情绪分布
    monitor.wait_for(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id and "emotion" in d["models"], timeout=60)
    time.sleep(18)
    live = _report(stack, session_id)
    assert live.final is False and live.status == "STREAMING" and live.streaming_seconds > 5

    # 推流端消失 12 秒：会话变为 DEGRADED；推流回来：同一会话回到 STREAMING
    publisher.stop()
    outage_at = time.monotonic()
    wait_until(lambda: _report(stack, session_id).status == "DEGRADED", 20, "推流中断后会话没有变为 DEGRADED")
    assert time.monotonic() - outage_at >= 9.5  # 中断满约 10 秒才算 DEGRADED
    close = student.wait_for(ev.SIGNAL_CLOSE, lambda d: d["session_id"] == session_id, timeout=5)
    assert close["reason"].startswith("no_frames")
    time.sleep(max(0.0, 12 - (time.monotonic() - outage_at)))
    stack.publishers.append(ClipPublisher(exam_clip, stack.rtsp.publish_url(name)).start())
    wait_until(lambda: _report(stack, session_id).status == "STREAMING", 20, "推流恢复后会话没有回到 STREAMING")
    time.sleep(3)
    beats.stop()
    assert beats.acks and all(a["ok"] for a in beats.acks)

    ended = stack.post("/api/end_session", {"session_id": session_id})
    assert ended.status_code == 200, ended.text
    report = SessionReport.model_validate(ended.json())
    assert report.final and report.status == "ENDED" and report.end_reason == "end_session"
    assert [t.state for t in report.transitions] == ["CREATED", "STREAMING", "DEGRADED", "STREAMING", "ENDED"]
    assert report.started_at is not None and report.media.degraded_episodes == 1 and report.media.reconnects >= 1
    # 被分析的时长：断流期间不计
    assert 20 <= report.streaming_seconds <= 45, report.streaming_seconds
    assert 0.4 * report.streaming_seconds < report.face_present_seconds < report.streaming_seconds
    assert report.attention_mean is not None and 0.3 < report.attention_mean < 1.0
    assert max(report.emotion_distribution, key=report.emotion_distribution.get) == "happy"
    assert abs(sum(report.emotion_distribution.values()) - 1.0) < 0.01
    no_face = [e for e in report.anomalies if e.code == "NO_FACE"]
    assert no_face and all(1.0 <= e.duration_s <= 16 for e in no_face), no_face
    assert any(e.code == "TALKING" for e in report.anomalies) and report.talking_seconds > 1.0
    assert report.heart_rate.seconds_with_hr == 0 and report.heart_rate.mean_bpm is None  # 片段没有脉搏
    # 复核优先级与教师墙同一算法，整场不衰减
    expected = risk_score([RiskEvent(e.code, e.peak_severity, e.duration_s) for e in report.anomalies], decay=False)
    assert report.risk == expected and report.risk.score > 0
    # 幂等：再次 end_session 与 GET 得到同一份报告
    again = stack.post("/api/end_session", {"session_id": session_id})
    assert again.status_code == 200 and again.json() == ended.json()
    assert stack.get(f"/api/sessions/{session_id}/report").json() == ended.json()


@pytest.fixture(scope="module")
def pose_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """作答 4 秒 + 转头 50° 8 秒 + 作答 4 秒 + 低头 35° 8 秒 + 作答 4 秒 + 换了一个人 10 秒（头部姿态是 3-D 平均人脸上
    渲染的；另一个人来自 insightface 轮子的 t1.jpg），循环推流。"""
    frames = [
        *face_frames(int(4 * FPS), FPS, seed=7),
        *face_frames(int(8 * FPS), FPS, seed=7, yaw_deg=50.0),
        *face_frames(int(4 * FPS), FPS, seed=7),
        *face_frames(int(8 * FPS), FPS, seed=7, pitch_deg=-35.0),
        *face_frames(int(4 * FPS), FPS, seed=7),
        *face_frames(int(10 * FPS), FPS, seed=7, person="t1-0"),
    ]
    return encode_clip(tmp_path_factory.mktemp("pose") / "pose.mp4", frames, fps=FPS, gop=30)


def test_turning_away_looking_down_and_a_swap_reach_the_wall_and_the_report(stack: Stack, pose_clip: Path) -> None:
    name, _ = stack.publish(pose_clip)
    monitor = stack.recorder(ev.NS_MONITOR)
    created = stack.post("/api/create_session", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)})
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    stack.streams.append(name)

    def codes_seen() -> set[str]:
        updates = monitor.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id)
        return {a["code"] for u in updates for a in u["anomalies"]}

    def codes_seen_last() -> set[str]:
        updates = monitor.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id)
        return {a["code"] for a in updates[-1]["anomalies"]}

    wanted = {"LOOK_AWAY", "LOOKING_DOWN", "IDENTITY_CHANGED"}
    wait_until(lambda: wanted <= codes_seen(), 60, "转头、低头与换人出现在 monitor.update 中")
    updates = monitor.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id)
    distances = [u["metrics"]["face"]["identity_distance"] for u in updates]
    assert any(d is not None and d < 0.45 for d in distances) and any(d is not None and d > 0.6 for d in distances)
    wait_until(lambda: "IDENTITY_CHANGED" not in codes_seen_last(), 20, "原来的人回到座位后换人结束")
    ended = stack.post("/api/end_session", {"session_id": session_id})
    assert ended.status_code == 200, ended.text
    report = SessionReport.model_validate(ended.json())
    episodes = {e.code: e for e in report.anomalies}
    assert wanted <= set(episodes), report.anomalies
    assert report.identity_held is False
    # 每段姿态 8 秒，持续 3 秒才报告：事件段约 5 秒（按条件开始的时刻记，含触发时长则约 8 秒）
    assert 3.0 <= episodes["LOOK_AWAY"].duration_s <= 10.0 and 3.0 <= episodes["LOOKING_DOWN"].duration_s <= 10.0
    assert report.look_away_seconds > 1.0 and report.looking_down_seconds > 1.0
    assert 2.0 <= episodes["IDENTITY_CHANGED"].duration_s <= 12.0
    assert "NO_FACE" not in episodes and "MULTI_FACE" not in episodes


def test_preview_is_a_mosaic_sent_only_to_teachers_allowed_to_see_the_exam_and_never_stored(
    stack: Stack, exam_clip: Path
) -> None:
    import base64

    import cv2
    import redis as redis_lib

    name, _ = stack.publish(exam_clip)
    wall = stack.recorder(ev.NS_MONITOR)  # 不限考试的教师
    other_exam = stack.recorder(ev.NS_MONITOR, auth={"token": stack.monitor_token(exam_id="another-exam")["token"]})
    created = stack.post(
        "/api/create_session",
        {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name), "exam_id": "preview-exam", "student_id": "p1"},
    )
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    stack.streams.append(name)
    student = stack.student(created.json())
    # 默认命名空间上按流订阅的旧前端连接（教师令牌）也收不到：预览只发往 /monitor
    legacy = stack.recorder(ev.NS_DEFAULT)
    legacy.call(ev.MONITOR_SUBSCRIBE, {"stream_name": name})

    preview = wall.wait_for(ev.MONITOR_PREVIEW, lambda d: d["session_id"] == session_id, timeout=40)
    assert preview["mode"] == "mosaic" and preview["exam_id"] == "preview-exam" and preview["stream_name"] == name
    jpeg = base64.b64decode(preview["image"].removeprefix("data:image/jpeg;base64,"))
    assert len(jpeg) < 6000
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (90, 160)
    # 马赛克：16x9 格，每格 10x10 像素几乎同色（只剩 JPEG 的误差），认不出五官
    blocks = image.reshape(9, 10, 16, 10).astype(float)
    assert float(blocks.std(axis=(1, 3)).max()) < 8.0
    assert float(blocks.mean(axis=(1, 3)).std()) > 5.0  # 不是一片空白

    assert not other_exam.matching(ev.MONITOR_PREVIEW, lambda d: d["session_id"] == session_id)
    assert not student.matching(ev.MONITOR_PREVIEW) and not legacy.matching(ev.MONITOR_PREVIEW)
    assert legacy.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id)  # 它确实在收这一路
    client = redis_lib.Redis.from_url(stack.redis.url)
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        values = {
            "string": lambda k: [client.get(k) or b""],
            "list": lambda k: client.lrange(k, 0, -1),
            "zset": lambda k: client.zrange(k, 0, -1),
            "hash": lambda k: list(client.hgetall(k).values()),
        }.get(kind, lambda k: [])(key)
        assert not any(b"data:image" in v for v in values), key


def test_silent_student_session_is_cleaned_up_with_reason(stack: Stack) -> None:
    session = stack.post("/api/create_session", {}).json()
    session_id = session["session_id"]
    student = stack.student(session)
    # 错误的心跳得到带原因的 ack，连接不受影响；别人的令牌不能为本会话续命
    assert student.call(ev.SESSION_HEARTBEAT, {"session_id": "s-unknown"})["ok"] is False
    bad = student.call(ev.SESSION_HEARTBEAT, {"ts": 1})
    assert bad["ok"] is False and "session_id" in bad["error"]
    stranger = stack.student(stack.post("/api/create_session", {}).json())  # 另一个会话的学生端
    refused = stranger.call(ev.SESSION_HEARTBEAT, {"session_id": session_id})
    assert refused["ok"] is False and refused["error"].startswith("forbidden")
    beats = Heartbeats(student, session_id)
    beats.start()
    time.sleep(HEARTBEAT_TIMEOUT_S + 1.0)
    assert _report(stack, session_id).status == "CREATED"  # 心跳在继续：会话保留
    beats.stop()
    stopped_at = time.monotonic()
    report = wait_until(
        lambda: (r := _report(stack, session_id)).final and r, HEARTBEAT_TIMEOUT_S + 5, "心跳停止后会话没有被清理"
    )
    assert time.monotonic() - stopped_at >= HEARTBEAT_TIMEOUT_S - 1.0
    assert report.status == "ENDED" and report.end_reason == "heartbeat_timeout"
    assert [t.state for t in report.transitions] == ["CREATED", "ENDED"]
    assert report.transitions[-1].reason == "heartbeat_timeout"
    # 之后的 end_session 幂等地返回同一份报告；已结束会话的心跳被拒绝
    again = stack.post("/api/end_session", {"session_id": session_id}).json()
    assert SessionReport.model_validate(again) == report
    assert student.call(ev.SESSION_HEARTBEAT, {"session_id": session_id})["ok"] is False


def test_session_that_never_gets_media_or_a_student_is_cleaned_up(stack: Stack) -> None:
    abandoned = stack.post("/api/create_session", {}).json()["session_id"]
    created_at = time.monotonic()
    report = wait_until(
        lambda: (r := _report(stack, abandoned)).final and r, NO_MEDIA_TIMEOUT_S + 5, "没有媒体的会话没有被清理"
    )
    assert time.monotonic() - created_at >= NO_MEDIA_TIMEOUT_S - 1.0
    assert report.end_reason == "no_media" and [t.state for t in report.transitions] == ["CREATED", "ENDED"]
