"""访问控制（真实网关 + 真实 Redis + 1 个工作进程 + rtsp-server-perl 上的真实流）：谁能连接、能看到哪些会话。

- 没有凭据、伪造、过期、被撤销的监控令牌，以及已结束会话的推流令牌：连接被拒绝，``connect_error`` 说明原因；
- 学生端只收到自己会话的事件，订阅别的会话被拒绝；
- 限定考试的监控令牌只收到该考试的会话（回放、广播、订阅都一样）；
- 续期得到同一授权的新令牌；撤销后已连接的客户端被断开；
- 看过会话的教师授权记在报告里；
- 创建会话时给的参考照片只在服务端：事件里没有，会话结束即删除；它是身份比对的基准。
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator

import cv2
import jwt
import pytest
import redis

from devtools.synthetic import empty_frames, id_photo
from shared import events as ev
from shared.api import SessionReport
from shared.keys import RedisKeys
from tests.conftest import MONITOR_TOKEN_SECRET, Clips, Stack
from tests.helpers import Recorder, connect_refusal, wait_until

WORKER_PROCESSES = 1
WATCH_S = 4.0  # 观察“收不到”的时长：约 10 次 monitor.update 的间隔


def _exam_session(stack: Stack, clips: Clips, exam_id: str) -> dict:
    """考试 ``exam_id`` 的一名考生：推一路人脸流，创建会话并开始分析。"""
    student_id = uuid.uuid4().hex[:8]
    name, _ = stack.publish(clips.face, f"exam-{exam_id}-user-{student_id}")
    resp = stack.post(
        "/api/create_session", {"exam_id": exam_id, "student_id": student_id, "rtsp_url": stack.rtsp.read_url(name)}
    )
    assert resp.status_code == 201, resp.text
    stack.streams.append(name)
    return resp.json()


@pytest.fixture(scope="module")
def two_exams(stack: Stack, clips: Clips) -> Iterator[dict[str, dict]]:
    """两场考试各一名考生，在本模块的全部测试期间都在分析中（不随每个测试的清理停止）。"""
    sessions = {"a": _exam_session(stack, clips, f"a{uuid.uuid4().hex[:6]}"),
                "b": _exam_session(stack, clips, f"b{uuid.uuid4().hex[:6]}")}  # fmt: skip
    publishers, streams = list(stack.publishers), list(stack.streams)
    stack.publishers.clear()
    stack.streams.clear()
    wall = Recorder(stack.base_url, ev.NS_MONITOR, auth={"token": stack.monitor_token()["token"]})
    for s in sessions.values():
        wall.wait_for(ev.MONITOR_UPDATE, lambda d, sid=s["session_id"]: d["session_id"] == sid, timeout=30)
    wall.close()
    yield sessions
    for name in streams:
        stack.post("/api/rtsp/stop", {"stream_name": name})
    for pub in publishers:
        pub.stop()


def _session_ids(rec: Recorder, event: str) -> set[str]:
    return {d["session_id"] for d in rec.matching(event)}


def test_connections_without_valid_credentials_are_refused_with_a_reason(stack: Stack, two_exams: dict) -> None:
    now = int(time.time())
    claims = {"aud": "proctor-monitor", "gid": "g-forged", "sub": "mallory", "renew_until": now + 3600}
    expired = jwt.encode({**claims, "exp": now - 5}, MONITOR_TOKEN_SECRET, algorithm="HS256")
    forged = jwt.encode({**claims, "exp": now + 600}, "not-the-gateway-secret-0123456789abcdef", algorithm="HS256")
    unsigned = jwt.encode({**claims, "exp": now + 600}, None, algorithm="none")
    cases = [
        (ev.NS_MONITOR, None, "token_missing"),
        (ev.NS_DEFAULT, None, "token_missing"),
        (ev.NS_MONITOR, {"token": "not-a-token"}, "token_invalid"),
        (ev.NS_MONITOR, {"token": expired}, "token_expired"),
        (ev.NS_MONITOR, {"token": forged}, "token_invalid"),
        (ev.NS_MONITOR, {"token": unsigned}, "token_invalid"),
        (ev.NS_DEFAULT, {"token": forged}, "token_invalid"),
        (ev.NS_DEFAULT, {"publish_token": "guess"}, "token_invalid"),
        (ev.NS_MONITOR, {"publish_token": two_exams["a"]["publish_token"]}, "token_missing"),  # 学生令牌进不了 /monitor
    ]
    for namespace, auth, reason in cases:
        refusal = connect_refusal(stack.base_url, namespace, auth)
        assert refusal is not None and refusal["data"]["reason"] == reason, (namespace, auth, refusal)
        assert refusal["message"]  # 页面显示的说明

    ended = stack.post("/api/create_session", {}).json()
    assert stack.post("/api/end_session", {"session_id": ended["session_id"]}).status_code == 200
    refusal = connect_refusal(stack.base_url, ev.NS_DEFAULT, {"publish_token": ended["publish_token"]})
    assert refusal is not None and refusal["data"]["reason"] == "session_ended"


def test_a_student_receives_only_its_own_session_and_cannot_subscribe_to_another(stack: Stack, two_exams: dict) -> None:
    mine, other = two_exams["a"], two_exams["b"]
    student = stack.student(mine)
    ack = student.call(ev.MONITOR_SUBSCRIBE, {"session_id": other["session_id"]})
    assert ack["ok"] is False and ack["error"].startswith("forbidden"), ack
    ack = student.call(ev.MONITOR_SUBSCRIBE, {"stream_name": other["stream_name"]})
    assert ack["ok"] is False and ack["error"].startswith("forbidden"), ack
    time.sleep(WATCH_S)
    # 不在广播房间：一条别人的（也没有自己的广播）事件都没有
    assert all(r.data.get("session_id") in (mine["session_id"], None) for r in student.events), student.events[:3]
    assert _session_ids(student, ev.VIDEO_EMOTION_RESULT) == set()
    # 订阅自己的会话可以，之后只收到自己的
    assert student.call(ev.MONITOR_SUBSCRIBE, {"session_id": mine["session_id"]})["ok"] is True
    student.wait_for(ev.MONITOR_UPDATE, lambda d: d["session_id"] == mine["session_id"], timeout=10)
    time.sleep(1.0)
    assert _session_ids(student, ev.MONITOR_UPDATE) == {mine["session_id"]}
    # 以别人的会话发事件：被拒绝
    beat = student.call(ev.SESSION_HEARTBEAT, {"session_id": other["session_id"], "ts": 1})
    assert beat["ok"] is False and beat["error"].startswith("forbidden")


def test_an_exam_scoped_token_sees_only_that_exam(stack: Stack, two_exams: dict) -> None:
    a, b = two_exams["a"], two_exams["b"]
    token = stack.monitor_token(exam_id=a["exam_id"])["token"]
    wall = stack.recorder(ev.NS_MONITOR, auth={"token": token})
    legacy = stack.recorder(ev.NS_DEFAULT, auth={"token": token})  # 种子 000 的前端：默认命名空间的广播事件
    wall.wait_for(ev.MONITOR_UPDATE, lambda d: d["session_id"] == a["session_id"] and not d.get("replay"), timeout=10)
    legacy.wait_for(ev.VIDEO_EMOTION_RESULT, lambda d: d["session_id"] == a["session_id"], timeout=10)
    time.sleep(WATCH_S)
    assert _session_ids(wall, ev.MONITOR_UPDATE) == {a["session_id"]}  # 回放与实时都只有 a
    assert _session_ids(legacy, ev.VIDEO_EMOTION_RESULT) == {a["session_id"]}
    assert _session_ids(legacy, ev.HEART_RATE_RESULT) <= {a["session_id"]}
    for target in ({"session_id": b["session_id"]}, {"stream_name": b["stream_name"]}):
        ack = wall.call(ev.MONITOR_SUBSCRIBE, target)
        assert ack["ok"] is False and "forbidden" in ack["error"], ack
    assert wall.call(ev.MONITOR_SUBSCRIBE, {"session_id": a["session_id"]})["ok"] is True
    # 不限考试的令牌两场都看得到
    everything = stack.recorder(ev.NS_MONITOR)
    wait_until(lambda: _session_ids(everything, ev.MONITOR_UPDATE) >= {a["session_id"], b["session_id"]}, 10, "全部会话")


def test_renewal_keeps_the_grant_and_revocation_disconnects_live_clients(stack: Stack, two_exams: dict) -> None:
    issued = stack.monitor_token(teacher="t-revoke")
    wall = stack.recorder(ev.NS_MONITOR, auth={"token": issued["token"]})
    lost: list[str] = []
    wall.client.on("auth.expired", lambda data: lost.append(data["reason"]), namespace=ev.NS_MONITOR)
    renewed = wall.call(ev.AUTH_RENEW, {})
    assert renewed["ok"] is True and renewed["token"] != issued["token"], renewed
    claims = jwt.decode(renewed["token"], MONITOR_TOKEN_SECRET, algorithms=["HS256"], audience="proctor-monitor")
    assert claims["gid"] == issued["grant_id"] and claims["sub"] == "t-revoke"
    assert connect_refusal(stack.base_url, ev.NS_MONITOR, {"token": renewed["token"]}) is None  # 新令牌可用

    resp = stack.post("/api/monitor/revoke", {"grant_id": issued["grant_id"]})
    assert resp.status_code == 200 and resp.json()["disconnected"] >= 1, resp.text
    wait_until(lambda: not wall.client.connected, 5, "撤销后连接没有断开")
    assert lost == ["token_revoked"]
    for token in (issued["token"], renewed["token"]):  # 同一授权的新旧令牌都不能再用
        refusal = connect_refusal(stack.base_url, ev.NS_MONITOR, {"token": token})
        assert refusal is not None and refusal["data"]["reason"] == "token_revoked"
    assert stack.post("/api/monitor/token", {"teacher": "t"}, headers={}).status_code == 401  # 签发要 API Key


def test_the_report_records_which_teacher_grants_watched_the_session(stack: Stack, two_exams: dict) -> None:
    a = two_exams["a"]
    wall_grant = stack.monitor_token(teacher="t-wall")
    stack.recorder(ev.NS_MONITOR, auth={"token": wall_grant["token"]}).wait_for(ev.MONITOR_UPDATE, timeout=10)
    focused = stack.monitor_token(teacher="t-focus", exam_id=a["exam_id"])
    stack.recorder(ev.NS_MONITOR, auth={"token": focused["token"]}).subscribe(session_id=a["session_id"])

    def viewers() -> set[tuple[str, str, str]]:
        report = stack.get(f"/api/sessions/{a['session_id']}/report").json()
        return {(v["teacher"], v["grant_id"], v["how"]) for v in report["viewers"]}

    expected = {("t-wall", wall_grant["grant_id"], "wall"), ("t-focus", focused["grant_id"], "subscribe")}
    wait_until(lambda: viewers() >= expected, 10, "报告里的审计记录")
    b_viewers = {v["teacher"] for v in stack.get(f"/api/sessions/{two_exams['b']['session_id']}/report").json()["viewers"]}
    assert "t-focus" not in b_viewers  # 只限考试 a 的授权没有看过 b


def test_reference_photo_from_create_session_is_the_identity_baseline_and_is_gone_after_the_end(
    stack: Stack, clips: Clips
) -> None:
    """同一个真实人脸片段经 RTSP 推三路，创建会话时各给一张参考照片：本人（原图整幅）、别人（t1.jpg）、没有人脸。
    工作进程认领时从 Redis 读照片：别人的照片 -> IDENTITY_CHANGED；本人 -> 同一人；没有人脸 -> 改为画面登记。
    事件里没有照片，会话结束后 Redis 里也没有。"""
    ok, empty = cv2.imencode(".jpg", next(empty_frames(1)))
    photos = {"same": id_photo("astronaut"), "other": id_photo("t1-2"), "no_face": empty.tobytes()}
    monitor = stack.recorder(ev.NS_MONITOR)
    sessions: dict[str, str] = {}
    for label, photo in photos.items():
        name, _ = stack.publish(clips.face)
        body = {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name), "reference_photo": base64.b64encode(photo).decode()}
        created = stack.post("/api/create_session", body)
        assert created.status_code == 201 and created.json()["reference_photo"] is True, created.text
        sessions[label] = created.json()["session_id"]
        stack.streams.append(name)

    def face(label: str) -> dict | None:
        updates = monitor.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == sessions[label])
        return updates[-1]["metrics"]["face"] if updates else None

    def settled() -> bool:
        same, other, no_face = face("same"), face("other"), face("no_face")
        return bool(
            same and same["identity_reference"] == "photo" and same["identity_distance"] is not None
            and no_face and no_face["identity_reference"] == "photo_unusable" and no_face["identity_distance"] is not None
            and other and other["identity_reference"] == "photo"
            and monitor.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == sessions["other"]
                                 and any(a["code"] == "IDENTITY_CHANGED" for a in d["anomalies"]))
        )

    # 3 路共用一个进程的比对预算（0.05 核，约每 2 秒一个描述子）：2 张照片 + 本人 1 次 + 别人 2 次 + 画面登记 3 次
    wait_until(settled, 60, "三路都按各自的照片比对（别人的照片报告 IDENTITY_CHANGED）",
               state=lambda: {label: face(label) for label in sessions})
    same = monitor.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == sessions["same"])
    assert all(d["metrics"]["face"]["identity_distance"] is None or d["metrics"]["face"]["identity_distance"] < 0.45
               for d in same)
    assert not any(a["code"] == "IDENTITY_CHANGED" for d in same for a in d["anomalies"])
    text = " ".join(str(r.data) for r in monitor.events)
    assert all(base64.b64encode(p).decode()[:64] not in text for p in photos.values())  # 照片从不发出

    r = redis.Redis.from_url(stack.redis.url)
    keys = RedisKeys(stack.env["KEY_PREFIX"])
    reports = {}
    for label, session_id in sessions.items():
        ended = stack.post("/api/end_session", {"session_id": session_id})
        assert ended.status_code == 200, ended.text
        reports[label] = SessionReport.model_validate(ended.json())
        assert not r.exists(keys.reference_photo(session_id))
    assert (reports["same"].identity_reference, reports["same"].identity_held) == ("photo", True)
    assert (reports["other"].identity_reference, reports["other"].identity_held) == ("photo", False)
    assert (reports["no_face"].identity_reference, reports["no_face"].identity_held) == ("photo_unusable", True)
