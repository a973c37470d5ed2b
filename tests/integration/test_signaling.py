"""信令中继、推流鉴权与路径可用性（真实网关 + 真实 Redis + 1 个工作进程 + rtsp-server-perl）。

MediaMTX 在这里无法运行（FACTS.md），用两个替身代替它：
- ``devtools/stack/whip_ingest.py``：基于 aiortc（真实 WebRTC 协议栈）的 WHIP 端点替身，推流前像 MediaMTX 一样
  调用网关的鉴权接口；
- ``tests/standins/mediamtx_api.py``：控制 API 替身，测试决定哪些路径“可读”。
路径可读后网关启动的分析读取的是 rtsp-server-perl 上的真实 RTSP 流。
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from devtools.stack.servers import RtspServer, free_port
from devtools.stack.whip_ingest import WhipStandin
from shared import events as ev
from tests.conftest import MEDIAMTX_AUTH_SECRET, Clips, Stack
from tests.helpers import connect_refusal, wait_until
from tests.standins.mediamtx_api import MediaMtxApiStandin

WORKER_PROCESSES = 1
WHIP_PORT = free_port()
MTX_API_PORT = free_port()
READ_USER, READ_PASSWORD = "proctor-reader", "reader-secret-42"
TOKEN_TTL_S = 8.0


def WORKER_ENV(rtsp: RtspServer) -> dict[str, str]:  # noqa: N802 - conftest 约定的模块变量名
    return {
        "MEDIAMTX_WHIP_URL": f"http://127.0.0.1:{WHIP_PORT}",
        "MEDIAMTX_API_URL": f"http://127.0.0.1:{MTX_API_PORT}",
        # 路径可读后从这里读取：测试里是 rtsp-server-perl（它不校验账号，但网关照样把账号加进地址）
        "MEDIAMTX_RTSP_URL": f"rtsp://127.0.0.1:{rtsp.client_port}",
        "MEDIAMTX_READ_USER": READ_USER,
        "MEDIAMTX_READ_PASSWORD": READ_PASSWORD,
        "MEDIAMTX_POLL_S": "0.5",
        "PUBLISH_TOKEN_TTL_S": str(TOKEN_TTL_S),
        "WHIP_TIMEOUT_S": "3",
    }


@pytest.fixture(scope="module", autouse=True)
def mtx_api() -> Iterator[MediaMtxApiStandin]:
    api = MediaMtxApiStandin(MTX_API_PORT).start()
    yield api
    api.stop()


def aiortc_offer(videos: int = 1, audios: int = 1) -> str:
    """真实 WebRTC 协议栈（aiortc）生成的 sendonly offer。"""

    async def make() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        for kind in ["video"] * videos + ["audio"] * audios:
            pc.addTransceiver(kind, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


def _session(stack: Stack, **body: str) -> dict:
    resp = stack.post("/api/create_session", body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _auth(stack: Stack, **request: str | None) -> httpx.Response:
    """按 MediaMTX v1.20 authMethod: http 的请求形状调用鉴权接口（不带 API Key）。"""
    body = {"ip": "192.168.1.20", "user": "", "password": "", "token": "", "protocol": "webrtc", "id": str(uuid.uuid4()),
            "query": "", "userAgent": "Mozilla/5.0", **request}  # fmt: skip
    return httpx.post(f"{stack.base_url}/api/mediamtx/auth", json=body, auth=("mediamtx", MEDIAMTX_AUTH_SECRET), timeout=10)


def test_mediamtx_auth_hook_allows_only_the_right_credentials(stack: Stack) -> None:
    mine, other = _session(stack), _session(stack)
    ended = _session(stack)
    assert stack.post("/api/end_session", {"session_id": ended["session_id"]}).status_code == 200
    path, token = mine["stream_name"], mine["publish_token"]
    table = [
        # (请求, 期望的拒绝原因；None 表示允许)
        ({"action": "publish", "path": path, "token": token}, None),
        ({"action": "publish", "path": path, "protocol": "rtsp", "user": "student", "password": token}, None),
        ({"action": "publish", "path": path, "token": "guess"}, "invalid_token"),
        ({"action": "publish", "path": path, "token": ""}, "invalid_token"),
        ({"action": "publish", "path": path, "token": other["publish_token"]}, "invalid_token"),
        ({"action": "publish", "path": other["stream_name"], "token": token}, "invalid_token"),
        ({"action": "publish", "path": "exam-unknown-user-1", "token": token}, "path_not_bound_to_session"),
        ({"action": "publish", "path": ended["stream_name"], "token": ended["publish_token"]}, "session_ended"),
        ({"action": "read", "path": path, "protocol": "rtsp", "user": READ_USER, "password": READ_PASSWORD}, None),
        ({"action": "playback", "path": path, "user": READ_USER, "password": READ_PASSWORD}, None),
        ({"action": "read", "path": path, "user": READ_USER, "password": "wrong"}, "invalid_reader_credentials"),
        ({"action": "read", "path": path, "token": token}, "invalid_reader_credentials"),
        ({"action": "read", "path": path}, "invalid_reader_credentials"),
        ({"action": "api", "path": "", "user": READ_USER, "password": READ_PASSWORD}, "action_not_allowed"),
        ({"action": "metrics", "path": ""}, "action_not_allowed"),
        ({"action": "pprof", "path": "", "token": token}, "action_not_allowed"),
        ({"action": "publish", "path": None, "token": token}, "path_not_bound_to_session"),
    ]
    for request, reason in table:
        resp = _auth(stack, **request)
        if reason is None:
            assert resp.status_code == 200, (request, resp.text)
        else:
            assert resp.status_code == 401 and resp.json() == {"allowed": False, "reason": reason}, (request, resp.text)
    assert _auth(stack, action="publish").status_code == 401  # 缺字段按拒绝处理，不是 500
    forged = {"action": "publish", "path": path, "token": token}
    assert httpx.post(f"{stack.base_url}/api/mediamtx/auth", json={"path": path}, auth=("mediamtx", MEDIAMTX_AUTH_SECRET),
                      timeout=10).status_code == 422  # fmt: skip
    for caller in (None, ("mediamtx", "wrong-secret")):  # 不是 MediaMTX（没有共享密钥）：正确的令牌也不放行
        resp = httpx.post(f"{stack.base_url}/api/mediamtx/auth", json=forged, auth=caller, timeout=10)
        assert resp.status_code == 401 and resp.json()["reason"] == "caller_not_mediamtx", resp.text


def test_offer_with_wrong_other_or_expired_token_is_refused(stack: Stack, whip: WhipStandin) -> None:
    mine, other = _session(stack), _session(stack)
    offer = {"session_id": mine["session_id"], "sdp": aiortc_offer()}
    # 没有令牌、令牌不对：连接就被拒绝
    for auth, reason in [({}, "token_missing"), ({"publish_token": "not-a-token"}, "token_invalid")]:
        refusal = connect_refusal(stack.base_url, ev.NS_DEFAULT, auth)
        assert refusal is not None and refusal["data"]["reason"] == reason, refusal
    # 别人的令牌：连接属于别人的会话，为本会话发的 offer 被拒绝
    student = stack.student(other)
    ack = student.call(ev.SIGNAL_OFFER, offer)
    assert ack["ok"] is False and ack["reason"] == "forbidden", ack
    assert student.wait_for(ev.SIGNAL_CLOSE, timeout=5) == {"session_id": mine["session_id"], "reason": "forbidden"}
    assert student.matching(ev.SIGNAL_ANSWER) == []
    # 令牌过期：offer 与 MediaMTX 的 publish 鉴权都拒绝；心跳仍被接受（进行中的考试不受影响）
    student = stack.student(mine)
    time.sleep(max(0.0, TOKEN_TTL_S + 0.5 - _age_s(mine)))
    ack = student.call(ev.SIGNAL_OFFER, offer)
    assert ack["ok"] is False and ack["reason"] == "token_expired", ack
    resp = _auth(stack, action="publish", path=mine["stream_name"], token=mine["publish_token"])
    assert resp.status_code == 401 and resp.json()["reason"] == "token_expired"
    assert student.call(ev.SESSION_HEARTBEAT, {"session_id": mine["session_id"]})["ok"] is True
    assert whip.stats()["posts"] == 0  # 被拒绝的 offer 从未到达媒体服务器


def _age_s(session: dict) -> float:
    from datetime import datetime

    created = datetime.fromisoformat(session["created_at"].replace("Z", "+00:00")).timestamp()
    return time.time() - created


def test_malformed_offers_get_a_reason_and_never_reach_the_media_server(stack: Stack, whip: WhipStandin) -> None:
    session = _session(stack)
    student = stack.student(session)
    sid = session["session_id"]
    before = whip.stats()["posts"]
    cases = [
        ({"session_id": sid, "sdp": aiortc_offer(videos=2)}, "offer_invalid", "视频 2"),
        ({"session_id": sid, "sdp": aiortc_offer(videos=1, audios=2)}, "offer_invalid", "音频 2"),
        ({"session_id": sid, "sdp": aiortc_offer(videos=0)}, "offer_invalid", "视频 0"),
        ({"session_id": sid, "sdp": aiortc_offer() + "a=x-pad:" + "x" * 40000 + "\r\n"}, "offer_invalid", "SDP 过大"),
        ({"session_id": sid, "sdp": "hello"}, "offer_invalid", "v=0"),
        ({"session_id": sid}, "bad_request", "sdp"),
        ({"session_id": "bad id!", "sdp": "v=0"}, "bad_request", "session_id"),
    ]
    for payload, reason, hint in cases:
        ack = student.call(ev.SIGNAL_OFFER, payload)
        assert ack["ok"] is False and ack["reason"] == reason and hint in ack["error"], (hint, ack)
    assert student.call(ev.SIGNAL_ICE, {"session_id": sid, "candidate": {"candidate": "candidate:1 1 udp 1 1.2.3.4 9 typ host"}})[
        "reason"
    ] == "no_media_session"
    assert whip.stats()["posts"] == before


def test_relay_answers_trickles_and_closes_through_whip(stack: Stack, whip: WhipStandin) -> None:
    session = _session(stack)
    sid = session["session_id"]
    student = stack.student(session)
    offer = aiortc_offer()
    ack = student.call(ev.SIGNAL_OFFER, {"session_id": sid, "sdp": offer})
    assert ack == {"ok": True, "reason": None, "error": None}
    answer = student.wait_for(ev.SIGNAL_ANSWER, timeout=5)
    assert answer["session_id"] == sid and answer["sdp"].startswith("v=0") and "a=recvonly" in answer["sdp"]
    report = stack.get(f"/api/sessions/{sid}/report").json()
    assert report["status"] == "ACTIVE" and [t["state"] for t in report["transitions"]] == ["CREATED", "ACTIVE"]

    # 浏览器的候选（mid 可能不是数字）-> PATCH，片段里是数字 mid
    line = next(x for x in offer.splitlines() if x.startswith("a=candidate:"))[2:]
    cand = {"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": None}
    assert student.call(ev.SIGNAL_ICE, {"session_id": sid, "candidate": cand})["ok"] is True
    bad = student.call(ev.SIGNAL_ICE, {"session_id": sid, "candidate": {**cand, "sdpMid": "9", "sdpMLineIndex": 9}})
    assert bad["ok"] is False and bad["reason"] == "candidate_invalid"
    first = _whip_session(whip, session["stream_name"])
    assert first["patches"] == 1

    # 重新发起推流（学生端重协商）：旧的 WHIP 会话被 DELETE
    assert student.call(ev.SIGNAL_OFFER, {"session_id": sid, "sdp": aiortc_offer()})["ok"] is True
    wait_until(lambda: _whip_session(whip, session["stream_name"], first["secret"])["deleted"], 5, "旧 WHIP 会话未被结束")
    # 学生端 close -> DELETE
    assert student.call(ev.SIGNAL_CLOSE, {"session_id": sid, "reason": "submitted"})["ok"] is True
    sessions = [s for s in whip.stats()["sessions"] if s["path"] == session["stream_name"]]
    assert len(sessions) == 2 and all(s["deleted"] for s in sessions)
    # 别的会话的学生端不能结束本会话的推流
    stranger = stack.student(_session(stack))
    assert stranger.call(ev.SIGNAL_CLOSE, {"session_id": sid})["reason"] == "forbidden"


def _whip_session(whip: WhipStandin, path: str, secret: str | None = None) -> dict:
    found = [s for s in whip.stats()["sessions"] if s["path"] == path and (secret is None or s["secret"] == secret)]
    assert found, f"WHIP 替身没有 {path} 的会话"
    return found[-1] if secret is None else found[0]


def test_media_server_errors_come_back_as_close_reasons_and_others_keep_working(stack: Stack, whip: WhipStandin) -> None:
    session, bystander = _session(stack), _session(stack)
    student, other = stack.student(session), stack.student(bystander)
    offer = {"session_id": session["session_id"], "sdp": aiortc_offer()}
    try:
        whip.set_mode("error500")
        started = time.monotonic()
        ack = student.call(ev.SIGNAL_OFFER, offer)
        assert ack["ok"] is False and ack["reason"] == "whip_status_500" and time.monotonic() - started < 3
        assert student.wait_for(ev.SIGNAL_CLOSE, timeout=5)["reason"] == "whip_status_500"

        whip.stop()  # 媒体服务器宕机
        started = time.monotonic()
        ack = student.call(ev.SIGNAL_OFFER, offer)
        assert ack["ok"] is False and ack["reason"] == "whip_unreachable" and time.monotonic() - started < 5
        # 网关照常服务其他会话
        assert httpx.get(f"{stack.base_url}/api/health", timeout=5).status_code == 200
        assert other.call(ev.SESSION_HEARTBEAT, {"session_id": bystander["session_id"]})["ok"] is True
        assert _session(stack)["publish_token"]
    finally:
        whip.start(port=WHIP_PORT)
    assert student.call(ev.SIGNAL_OFFER, offer)["ok"] is True  # 恢复后同一会话可以重新发起


def test_path_availability_starts_the_consumer_exactly_once_and_stops_it(
    stack: Stack, clips: Clips, mtx_api: MediaMtxApiStandin
) -> None:
    session = _session(stack, exam_id=str(uuid.uuid4()), student_id="7")
    name, sid = session["stream_name"], session["session_id"]
    stack.publish(clips.face, name=name)
    student = stack.student(session)
    assert student.call(ev.SESSION_HEARTBEAT, {"session_id": sid})["ok"] is True  # 进入会话房间
    monitor = stack.recorder(ev.NS_MONITOR)
    hook = f"{stack.base_url}/api/mediamtx/hook"

    # 钩子说可读，但 MediaMTX API 说不可读（伪造或过时的通知）：不启动
    assert httpx.post(hook, params={"path": name, "event": "available"}, timeout=10).json()["action"] == "none"

    # 路径可读：钩子重复、并发到达，同时轮询也在对账 -> 只启动一次
    mtx_api.set_available(name, True)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: httpx.post(hook, params={"path": name, "event": "available"}, timeout=10), range(6)))
    assert all(r.status_code == 200 for r in results)
    actions = [r.json()["action"] for r in results]
    assert actions.count("started") <= 1 and set(actions) <= {"started", "none"}, actions
    monitor.wait_for(ev.MONITOR_UPDATE, lambda d: d["session_id"] == sid and d["metrics"]["face"]["detected"], timeout=40)
    time.sleep(1.5)  # 再过几个轮询周期
    assert len(student.matching(ev.SIGNAL_READY)) == 1
    assert student.matching(ev.SIGNAL_READY)[0] == {"session_id": sid}
    status = stack.stream_status(name)
    assert status is not None and status["session_id"] == sid and status["owner_alive"]
    assert status["rtsp_url"] == stack.rtsp.read_url(name)  # 读取账号只在工作进程内加进地址，不出现在状态里
    assert READ_PASSWORD not in str(stack.status())

    # 不可读：钩子 -> 停止
    mtx_api.set_available(name, False)
    stopped = httpx.post(hook, params={"path": name, "event": "unavailable"}, timeout=10).json()
    assert stopped["action"] in ("stopped", "none")  # 轮询可能先一步停止
    wait_until(lambda: stack.stream_status(name) is None, 5, "路径不可读后分析未停止")

    # 只靠轮询（钩子丢失）：再次可读 -> 启动并再发一次 signal.ready；不可读 -> 停止
    mtx_api.set_available(name, True)
    wait_until(lambda: stack.stream_status(name) is not None, 5, "轮询没有发现可读的路径")
    wait_until(lambda: len(student.matching(ev.SIGNAL_READY)) == 2, 5, "重新可读后没有 signal.ready")
    mtx_api.set_available(name, False)
    wait_until(lambda: stack.stream_status(name) is None, 5, "轮询没有停止不可读的路径")

    # 会话结束后路径再可读也不启动
    stack.post("/api/end_session", {"session_id": sid})
    mtx_api.set_available(name, True)
    time.sleep(1.5)
    assert stack.stream_status(name) is None
    mtx_api.set_available(name, False)
