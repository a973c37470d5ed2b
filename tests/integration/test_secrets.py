"""密钥与令牌不落地、不进日志；猜令牌与猜 API Key 被限速（真实网关 + 本模块独占的真实 Redis（AOF 打开）+
1 个工作进程 + 真实 RTSP 流）。

一次完整的端到端运行（创建会话、学生端连接与心跳与皮肤颜色样本、教师连接与订阅、分析、结束会话、取报告，
外加几次错误的凭据）之后：网关与工作进程的全部输出、Redis 数据目录里的所有文件都不含 API Key、
教师监控令牌与推流令牌的明文。然后：1,000 次猜错的推流令牌与 1,000 次猜错的 API Key 都在约 20 次后被 429 挡住。
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import redis

from shared import events as ev
from tests.conftest import API_KEY, MEDIAMTX_AUTH_SECRET, MONITOR_TOKEN_SECRET, Clips, Stack
from tests.helpers import connect_refusal, wait_until

WORKER_PROCESSES = 1
OWN_REDIS = True
LOG_TO_FILE = True
FAILURES_PER_MINUTE = 20
WORKER_ENV = {"AUTH_FAILURES_PER_MINUTE": str(FAILURES_PER_MINUTE)}


def _files_containing(root: Path, needles: dict[str, str]) -> list[tuple[str, str]]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(str(path), what) for what, needle in needles.items() if needle.encode() in data]
    return found


def test_no_key_or_token_in_logs_or_in_the_redis_data_directory(stack: Stack, clips: Clips) -> None:
    exam, student_id = uuid.uuid4().hex[:8], "s1"
    name, _ = stack.publish(clips.face, f"exam-{exam}-user-{student_id}")
    session = stack.post(
        "/api/create_session", {"exam_id": exam, "student_id": student_id, "rtsp_url": stack.rtsp.read_url(name)}
    ).json()
    stack.streams.append(name)
    sid, publish_token = session["session_id"], session["publish_token"]
    monitor = stack.monitor_token(teacher="t-secrets")
    teacher = stack.recorder(ev.NS_MONITOR, auth={"token": monitor["token"]})
    teacher.subscribe(session_id=sid)
    teacher.wait_for(ev.MONITOR_UPDATE, lambda d: d["session_id"] == sid and not d.get("replay"), timeout=30)
    student = stack.student(session)
    assert student.call(ev.SESSION_HEARTBEAT, {"session_id": sid, "ts": time.time() * 1000})["ok"] is True
    rows = [[1000.0 + 66.7 * i, 180.0, 130.0, 110.0] for i in range(15)]
    assert student.call(ev.PPG_SAMPLES, {"session_id": sid, "roi_seq": 1, "samples": rows})["ok"] is True
    renewed = teacher.call(ev.AUTH_RENEW, {})["token"]
    # 错误的凭据：日志里可以有“被拒绝”，但不能有被拒绝的那串值之外的任何真凭据
    assert stack.get("/api/rtsp/status", headers={"X-API-Key": "wrong-key"}).status_code == 401
    assert connect_refusal(stack.base_url, ev.NS_MONITOR, {"token": monitor["token"][:-4] + "AAAA"}) is not None
    auth = {"action": "publish", "path": name, "token": publish_token, "ip": "10.9.9.9", "protocol": "webrtc"}
    resp = httpx.post(f"{stack.base_url}/api/mediamtx/auth", json=auth, auth=("mediamtx", MEDIAMTX_AUTH_SECRET), timeout=5)
    assert resp.status_code == 200
    report = stack.post("/api/end_session", {"session_id": sid}).json()
    assert report["final"] is True and report["viewers"]
    # 浏览器页的 URL：令牌在 # 之后，不会出现在访问日志里
    assert httpx.get(f"{stack.base_url}/student-demo?session_id={sid}", timeout=5).status_code == 200

    r = redis.Redis.from_url(stack.redis.url)
    assert r.bgrewriteaof()
    wait_until(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0, 10, "AOF 重写")
    r.save()
    r.close()
    secrets = {
        "API_KEY": API_KEY,
        "MONITOR_TOKEN_SECRET": MONITOR_TOKEN_SECRET,
        "MEDIAMTX_AUTH_SECRET": MEDIAMTX_AUTH_SECRET,
        "monitor token": monitor["token"],
        "renewed monitor token": renewed,
        "publish token": publish_token,
    }
    data_dir = stack.redis.data_dir
    assert _files_containing(data_dir, {"session id": sid}), "Redis 数据目录里没有这次运行的数据：检查不到东西"
    assert _files_containing(data_dir, secrets) == []
    time.sleep(1.0)  # 让子进程的输出写完
    assert stack.log_path is not None
    logs = stack.log_path.read_text(errors="replace")
    assert sid in logs or "POST /api/end_session" in logs  # 日志确实记下了这次运行
    assert [what for what, needle in secrets.items() if needle in logs] == []


def _allowed_failures(started: float) -> float:
    """这段时间里限额最多放过的失败次数：一次突发的额度，加上期间按每分钟 FAILURES_PER_MINUTE 恢复的。"""
    return FAILURES_PER_MINUTE * (1 + (time.monotonic() - started) / 60.0) + 1


def test_a_thousand_wrong_publish_tokens_from_one_client_are_rate_limited(stack: Stack) -> None:
    session = stack.post("/api/create_session", {}).json()
    path = session["stream_name"]
    with httpx.Client(base_url=stack.base_url, auth=("mediamtx", MEDIAMTX_AUTH_SECRET), timeout=5) as client:

        def guess(token: str, ip: str) -> int:
            body = {"action": "publish", "path": path, "token": token, "ip": ip, "protocol": "webrtc"}
            return client.post("/api/mediamtx/auth", json=body).status_code

        started = time.monotonic()
        codes = [guess(f"guess-{i}", "10.1.2.3") for i in range(1000)]
        print(f"1,000 次猜推流令牌：{codes.count(401)} 次得到 401，{codes.count(429)} 次被 429 挡住")
        assert codes.count(401) <= _allowed_failures(started) and codes.count(401) + codes.count(429) == 1000, codes[:30]
        assert guess(session["publish_token"], "10.1.2.3") == 429  # 被挡住的来源连正确的令牌也不再校验
        assert guess(session["publish_token"], "10.1.2.4") == 200  # 别的学生不受影响


def test_a_thousand_wrong_api_keys_are_rate_limited(stack: Stack) -> None:
    """放在本模块最后：之后本机（127.0.0.1）对这个网关的 REST 调用都会被 429 挡住约一分钟。"""
    assert stack.get("/api/rtsp/status").status_code == 200
    with httpx.Client(base_url=stack.base_url, timeout=5) as client:
        started = time.monotonic()
        codes = [client.get("/api/rtsp/status", headers={"X-API-Key": f"guess-{i}"}).status_code for i in range(1000)]
        assert codes.count(401) <= _allowed_failures(started) and codes.count(401) + codes.count(429) == 1000
        assert client.get("/api/rtsp/status", headers={"X-API-Key": API_KEY}).status_code == 429
        assert client.get("/api/health").status_code == 200  # 不需要凭据的接口照常
        # 猜 MediaMTX 的共享密钥同样被挡住
        forged = [client.post("/api/mediamtx/auth", json={"action": "read"}, auth=("mediamtx", f"x{i}")).status_code
                  for i in range(50)]  # fmt: skip
        assert forged.count(429) >= 30, forged
    metrics = httpx.get(f"{stack.base_url}/metrics", timeout=5).text
    assert 'proctor_gateway_auth_refusals_total{endpoint="api_key",reason="invalid"}' in metrics
