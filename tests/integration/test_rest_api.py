"""REST 接口：API Key、请求体校验、会话与流任务的基本行为（真实网关进程 + 真实 Redis）。"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from devtools.stack.servers import free_port
from shared.keys import RedisKeys
from tests.conftest import Stack
from tests.standins.mediamtx_api import MediaMtxApiStandin

WORKER_PROCESSES = 0  # 只测网关
MEDIAMTX_PORT = free_port()
# 127.0.0.1 也是 MEDIAMTX_RTSP_URL 的主机（总是允许）；cam.school.lan 代表学校登记过的摄像头
WORKER_ENV = {"MEDIAMTX_API_URL": f"http://127.0.0.1:{MEDIAMTX_PORT}", "RTSP_ALLOWED_HOSTS": "cam.school.lan"}


@pytest.fixture(scope="module")
def mediamtx_stand_in() -> Iterator[MediaMtxApiStandin]:
    api = MediaMtxApiStandin(MEDIAMTX_PORT).start()
    yield api
    api.stop()


PROTECTED = [
    ("POST", "/api/create_session", {}),
    ("POST", "/api/end_session", {"session_id": "s-x"}),
    ("POST", "/api/rtsp/start", {"stream_name": "exam-a-user-1", "rtsp_url": "rtsp://127.0.0.1/x"}),
    ("POST", "/api/rtsp/stop", {"stream_name": "exam-a-user-1"}),
    ("GET", "/api/rtsp/status", None),
    ("GET", "/api/sessions/s-x/report", None),
]


@pytest.mark.parametrize("method,path,body", PROTECTED)
@pytest.mark.parametrize("key", [None, "wrong-key", ""])
def test_rest_requires_api_key(stack: Stack, method: str, path: str, body: object, key: str | None) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    resp = httpx.request(method, f"{stack.base_url}{path}", json=body, headers=headers, timeout=10)
    assert resp.status_code == 401
    assert "X-API-Key" in resp.json()["detail"]


def test_health_is_public(stack: Stack) -> None:
    resp = httpx.get(f"{stack.base_url}/api/health", timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "redis": True, "workers_alive": 0}


@pytest.mark.parametrize(
    "body,field",
    [
        ({"stream_name": "exam-a-user-1"}, "rtsp_url"),
        ({"stream_name": "exam-a-user-1", "rtsp_url": "http://127.0.0.1/live"}, "rtsp_url"),
        ({"stream_name": "exam-a-user-1", "rtsp_url": "file:///etc/passwd"}, "rtsp_url"),
        ({"stream_name": "exam-a-user-1", "rtsp_url": "rtmp://127.0.0.1/live"}, "rtsp_url"),
        ({"stream_name": "exam-a-user-1", "rtsp_url": "rtsp:///no-host"}, "rtsp_url"),
        ({"stream_name": "../etc", "rtsp_url": "rtsp://127.0.0.1/x"}, "stream_name"),
        ({"stream_name": "exam-a-user-1", "rtsp_url": "rtsp://h/x", "extra": 1}, "extra"),
    ],
)
def test_rtsp_start_rejects_bad_body_with_reason(stack: Stack, body: dict, field: str) -> None:
    resp = stack.post("/api/rtsp/start", body)
    assert resp.status_code == 422
    errors = resp.json()["detail"]
    assert any(field in [str(p) for p in e["loc"]] for e in errors), errors
    assert all(e["msg"] for e in errors)


def test_rtsp_url_scheme_reason_is_readable(stack: Stack) -> None:
    resp = stack.post("/api/rtsp/start", {"stream_name": "exam-a-user-1", "rtsp_url": "http://h/x"})
    assert resp.status_code == 422
    assert "rtsp://" in resp.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "url,reason",
    [
        ("rtsp://127.0.0.1:6379/x\r\nSET injected 1\r\n", "控制字符"),  # 经工作进程写进 Redis 的命令
        ("rtsp://127.0.0.1/x\n", "控制字符"),
        ("rtsp://127.0.0.1/x y", "空白"),
        (" rtsp://127.0.0.1/x", "空白"),
        ("rtsp://0x7f000001:6379/x", "数字形式"),
        ("rtsp://169.254.169.254/latest", "链路本地"),
        ("rtsp://10.0.0.9/x", "RTSP_ALLOWED_HOSTS"),
        ("rtsp://[fd00::1]:8554/x", "RTSP_ALLOWED_HOSTS"),
        ("rtmp://127.0.0.1/x", "rtsp://"),
    ],
)
def test_rtsp_url_is_checked_as_received_and_against_the_allowed_hosts(stack: Stack, url: str, reason: str) -> None:
    name = f"exam-url-{uuid.uuid4().hex[:8]}-user-1"
    for path in ("/api/rtsp/start", "/api/create_session"):
        resp = stack.post(path, {"stream_name": name, "rtsp_url": url})
        assert resp.status_code == 422, resp.text
        (error,) = resp.json()["detail"]
        assert error["loc"][-1] == "rtsp_url" and reason in error["msg"], error
    keys = RedisKeys(stack.env["KEY_PREFIX"])
    r = redis.Redis.from_url(stack.redis.url)
    # 没有写下任何任务（工作进程永远不会去连它），也没有留下会话，注入的命令没有执行
    assert r.hget(keys.streams, name) is None and r.get(keys.stream_session(name)) is None
    assert not r.exists("injected")


def test_allowed_camera_host_is_accepted(stack: Stack) -> None:
    name = f"exam-cam-{uuid.uuid4().hex[:8]}-user-1"
    resp = stack.post("/api/rtsp/start", {"stream_name": name, "rtsp_url": f"rtsp://CAM.school.lan:8554/{name}"})
    assert resp.status_code == 200, resp.text
    assert stack.post("/api/rtsp/stop", {"stream_name": name}).status_code == 200


def test_passwords_in_rtsp_urls_never_come_back(stack: Stack) -> None:
    name = f"exam-pw-{uuid.uuid4().hex[:8]}-user-1"
    url = f"rtsp://camera:s3cret-pw@127.0.0.1:8554/{name}"
    created = stack.post("/api/create_session", {"stream_name": name, "rtsp_url": url})
    again = stack.post("/api/rtsp/start", {"stream_name": name, "rtsp_url": url})
    conflict = stack.post("/api/rtsp/start", {"stream_name": name, "rtsp_url": "rtsp://127.0.0.1/other"})
    status = stack.get("/api/rtsp/status")
    assert [created.status_code, again.status_code, conflict.status_code, status.status_code] == [201, 200, 409, 200]
    for resp in (created, again, conflict, status):
        assert "s3cret-pw" not in resp.text
    shown = f"rtsp://camera:***@127.0.0.1:8554/{name}"
    assert created.json()["rtsp_url"] == again.json()["rtsp_url"] == shown and again.json()["created"] is False
    assert [s["rtsp_url"] for s in status.json()["streams"] if s["stream_name"] == name] == [shown]
    assert stack.post("/api/end_session", {"session_id": created.json()["session_id"]}).status_code == 200


def test_pages_carry_security_headers_and_only_page_files_are_served(stack: Stack) -> None:
    page = httpx.get(f"{stack.base_url}/monitor", timeout=10)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    for resp in (page, stack.get("/api/rtsp/status")):
        assert resp.headers["x-content-type-options"] == "nosniff" and resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "no-referrer"
    assert httpx.get(f"{stack.base_url}/dashboard/student.js", timeout=10).status_code == 200
    for path in ("/dashboard/package.json", "/dashboard/package-lock.json", "/dashboard/monitor.html",
                 "/dashboard/node_modules/socket.io-client/package.json", "/dashboard/", "/docs"):
        assert httpx.get(f"{stack.base_url}{path}", timeout=10).status_code == 404, path
    assert httpx.get(f"{stack.base_url}/openapi.json", timeout=10).status_code == 200


def test_malformed_json_is_422(stack: Stack) -> None:
    resp = httpx.post(
        f"{stack.base_url}/api/create_session",
        content=b"{not json",
        headers={**stack.headers, "Content-Type": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 422


def test_rtsps_is_accepted_and_start_is_idempotent(stack: Stack) -> None:
    name = f"exam-{uuid.uuid4()}-user-7"
    body = {"stream_name": name, "rtsp_url": "rtsps://127.0.0.1:8322/" + name}
    first = stack.post("/api/rtsp/start", body)
    second = stack.post("/api/rtsp/start", body)
    assert first.status_code == second.status_code == 200
    assert first.json()["created"] is True and second.json()["created"] is False
    other = stack.post("/api/rtsp/start", {**body, "rtsp_url": "rtsp://127.0.0.1/other"})
    assert other.status_code == 409
    stopped = stack.post("/api/rtsp/stop", {"stream_name": name})
    assert stopped.status_code == 200 and stopped.json()["owner"] is None
    assert stack.post("/api/rtsp/stop", {"stream_name": name}).status_code == 404


def test_session_create_binds_stream_and_end_is_idempotent(stack: Stack) -> None:
    exam = str(uuid.uuid4())
    resp = stack.post("/api/create_session", {"exam_id": exam, "student_id": "42"})
    assert resp.status_code == 201, resp.text
    info = resp.json()
    assert info["stream_name"] == f"exam-{exam}-user-42"
    assert info["status"] == "CREATED" and info["publish_token"] and info["stream_started"] is False
    # 第二个未结束会话不能占用同一流名
    assert stack.post("/api/create_session", {"exam_id": exam, "student_id": "42"}).status_code == 409
    # 按流名开始消费时，流解析到该会话
    started = stack.post("/api/rtsp/start", {"stream_name": info["stream_name"], "rtsp_url": "rtsp://127.0.0.1/x"})
    assert started.json()["session_id"] == info["session_id"]
    first = stack.post("/api/end_session", {"session_id": info["session_id"]})
    second = stack.post("/api/end_session", {"session_id": info["session_id"]})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    report = first.json()
    assert report["status"] == "ENDED" and report["end_reason"] == "end_session" and report["final"] is True
    # 从未收到视频：时长为 0、均值为 null，状态变化只有创建与结束
    assert report["streaming_seconds"] == 0 and report["attention_mean"] is None and report["anomalies"] == []
    assert report["started_at"] is None and [t["state"] for t in report["transitions"]] == ["CREATED", "ENDED"]
    assert stack.get(f"/api/sessions/{info['session_id']}/report").json() == first.json()
    # 会话结束时其流任务也被移除
    assert all(s["stream_name"] != info["stream_name"] for s in stack.status()["streams"])
    assert stack.post("/api/end_session", {"session_id": "s-unknown"}).status_code == 404


def test_create_session_whose_stream_is_taken_leaves_no_session_behind(stack: Stack) -> None:
    """create_session 带的 rtsp_url 与该流正在消费的地址冲突时 409，且不留下占着流名的会话：按提示 rtsp/stop 后即可重新创建。"""
    name = f"exam-taken-{uuid.uuid4().hex[:8]}-user-1"
    assert stack.post("/api/rtsp/start", {"stream_name": name, "rtsp_url": "rtsp://127.0.0.1/a"}).status_code == 200
    taken = stack.post("/api/create_session", {"stream_name": name, "rtsp_url": "rtsp://127.0.0.1/b"})
    assert taken.status_code == 409 and "rtsp/stop" in taken.json()["detail"]
    assert stack.post("/api/rtsp/stop", {"stream_name": name}).status_code == 200
    again = stack.post("/api/create_session", {"stream_name": name, "rtsp_url": "rtsp://127.0.0.1/b"})
    assert again.status_code == 201, again.text
    assert again.json()["stream_started"] is True
    assert stack.post("/api/end_session", {"session_id": again.json()["session_id"]}).status_code == 200


def _end_session(stack: Stack, r: redis.Redis, session_id: str, lease: str) -> tuple[httpx.Response, int]:
    """end_session 的回答，以及回答到达时该流的租约是否还在。"""
    resp = stack.post("/api/end_session", {"session_id": session_id})
    return resp, r.exists(lease)


def test_concurrent_end_session_calls_end_the_session_once(stack: Stack) -> None:
    """同时到达的几次 end_session（如后端超时重试）只结束一次：一条 ENDED 状态变化，各自得到同一份报告。

    流有所属进程（这里直接写一个 2 秒后过期的租约）时，第一次调用要等它释放流，其余调用在此期间到达。"""
    keys = RedisKeys(stack.env["KEY_PREFIX"])
    r = redis.Redis.from_url(stack.redis.url)
    for _ in range(2):
        session = stack.post("/api/create_session", {"stream_name": f"exam-end-{uuid.uuid4().hex[:8]}-user-1"}).json()
        stack.post("/api/rtsp/start", {"stream_name": session["stream_name"], "rtsp_url": "rtsp://127.0.0.1/x"})
        lease = keys.lease(session["stream_name"])
        r.set(lease, "w-test", px=2000)
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(_end_session, stack, r, session["session_id"], lease)
            time.sleep(0.3)  # 第一次调用正在等租约释放
            others = [pool.submit(_end_session, stack, r, session["session_id"], lease) for _ in range(2)]
            results = [future.result() for future in (first, *others)]
        # 每次调用都等到所属进程释放流之后才定稿（释放前它还会写最后的汇总增量）
        assert [leased for _, leased in results] == [0, 0, 0]
        assert [resp.status_code for resp, _ in results] == [200, 200, 200]
        reports = [resp.json() for resp, _ in results]
        assert [t["state"] for t in reports[0]["transitions"]] == ["CREATED", "ENDED"]
        assert all(report == reports[0] for report in reports)
        assert stack.get(f"/api/sessions/{session['session_id']}/report").json() == reports[0]


def test_create_session_requires_exam_and_student_together(stack: Stack) -> None:
    resp = stack.post("/api/create_session", {"exam_id": "abc"})
    assert resp.status_code == 422
    assert "student_id" in resp.json()["detail"][0]["msg"]


PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.mark.parametrize(
    "photo,reason",
    [
        ("not base64!", "base64"),
        (base64.b64encode(b"GIF89a...").decode(), "JPEG 或 PNG"),
        (base64.b64encode(b"\xff\xd8\xff" + bytes(256 * 1024)).decode(), "超过上限"),
    ],
)
def test_reference_photo_that_is_not_a_small_jpeg_or_png_is_refused_with_a_reason(
    stack: Stack, photo: str, reason: str
) -> None:
    resp = stack.post("/api/create_session", {"reference_photo": photo})
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["detail"]
    assert error["loc"][-1] == "reference_photo" and reason in error["msg"], error


def test_reference_photo_is_kept_only_server_side_and_deleted_when_the_session_ends(stack: Stack) -> None:
    photo = "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()
    created = stack.post("/api/create_session", {"reference_photo": photo})
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["reference_photo"] is True
    keys = RedisKeys(stack.env["KEY_PREFIX"])
    r = redis.Redis.from_url(stack.redis.url)
    assert r.get(keys.reference_photo(session["session_id"])) == PNG_1X1  # 工作进程认领流时读它
    report = stack.get(f"/api/sessions/{session['session_id']}/report")
    assert report.status_code == 200 and "iVBOR" not in report.text and "iVBOR" not in created.text  # 照片本身从不返回
    ended = stack.post("/api/end_session", {"session_id": session["session_id"]})
    assert ended.status_code == 200 and ended.json()["identity_reference"] is None  # 没有工作进程：从未比对
    assert not r.exists(keys.reference_photo(session["session_id"]))  # 结束即删除，不随报告保留
    assert r.get(keys.session(session["session_id"])) is not None  # 会话记录照常随报告保留


def test_end_session_closes_the_publisher_through_the_mediamtx_api(
    mediamtx_stand_in: MediaMtxApiStandin, stack: Stack
) -> None:
    name = f"exam-live-{uuid.uuid4()}-user-1"
    live = stack.post("/api/create_session", {"stream_name": name}).json()["session_id"]
    mediamtx_stand_in.set_available(name, True)  # 该路径有一个 WebRTC 发布端
    assert stack.post("/api/end_session", {"session_id": live}).status_code == 200
    assert ("POST", f"/v3/webrtcsessions/kick/sess-{name}") in mediamtx_stand_in.requests
    # 没有发布端（MediaMTX 回答 404）：照样结束，不踢任何连接
    idle = stack.post("/api/create_session", {}).json()
    before = len(mediamtx_stand_in.requests)
    assert stack.post("/api/end_session", {"session_id": idle["session_id"]}).json()["final"] is True
    asked = [(m, p) for m, p in mediamtx_stand_in.requests[before:] if not p.startswith("/v3/paths/list")]  # 除去轮询
    assert asked == [("GET", f"/v3/paths/get/{idle['stream_name']}")]
    mediamtx_stand_in.set_available(name, False)
