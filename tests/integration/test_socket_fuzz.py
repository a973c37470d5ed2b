"""Socket.IO 模糊测试（真实网关 + 真实 Redis + 1 个工作进程 + 真实 RTSP 流）：错误的类型、缺字段、格式错误的包、
10 MB 的消息、保留事件名、每秒 1,000 个事件。网关保持可用，正常的教师客户端照常以原来的速率收到更新，
滥用者被限速并断开，计数出现在 ``/metrics`` 中（用 prometheus_client 的解析器读取）。

滥用者用原始 WebSocket 直接说 Engine.IO / Socket.IO 协议（websocket-client），这样才能发出正常客户端库不让发的包。
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import websocket
from prometheus_client.parser import text_string_to_metric_families

from shared import events as ev
from tests.conftest import Clips, Stack
from tests.helpers import wait_until

WORKER_PROCESSES = 1
WORKER_ENV = {"SOCKET_EVENTS_PER_S": "20"}


class RawSocket:
    """一条原始的 Socket.IO 连接（Engine.IO v4 over WebSocket）：发任意文本包，后台线程收包并回应 ping。"""

    def __init__(self, base_url: str, namespace: str, auth: dict | None) -> None:
        url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = websocket.create_connection(url, timeout=10)
        assert self.ws.recv().startswith("0")  # Engine.IO open
        self.prefix = "" if namespace == "/" else f"{namespace},"
        self.received: list[tuple[float, str]] = []
        self.closed = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.send(f"40{self.prefix}{json.dumps(auth) if auth else ''}")
        self.accepted = wait_until(lambda: self._first(("40", "44")), 10, "命名空间连接没有回应")[:2] == "40"

    def _read(self) -> None:
        try:
            while True:
                msg = self.ws.recv()
                if msg == "2":
                    self.ws.send("3")
                    continue
                if msg == "1":  # Engine.IO close：服务端关闭了整条连接
                    self.closed.set()
                with self._lock:
                    self.received.append((time.monotonic(), msg))
        except Exception:  # noqa: BLE001 - 连接被关闭
            self.closed.set()

    def _first(self, starts: tuple[str, ...]) -> str | None:
        with self._lock:
            return next((m for _, m in self.received if m.startswith(starts)), None)

    def send(self, text: str) -> None:
        self.ws.send(text)

    def event(self, name: Any, *args: Any, ack: int | None = None) -> None:
        self.send(f"42{self.prefix}{'' if ack is None else ack}{json.dumps([name, *args])}")

    def ack(self, ack_id: int, timeout: float = 5.0) -> Any:
        head = f"43{self.prefix}{ack_id}["
        found = wait_until(lambda: self._first((head,)), timeout, f"ack {ack_id} 没有到达")
        return json.loads(found[len(head) - 1 :])[0]

    def events(self, name: str, since: float = 0.0) -> list[Any]:
        head = f'42{self.prefix}["{name}",'
        with self._lock:
            return [json.loads(m[2 + len(self.prefix) :])[1] for t, m in self.received if t >= since and m.startswith(head)]

    def close(self) -> None:
        self.ws.close()


def _live_updates(stack_rec: Any, since: float, until: float) -> int:
    return sum(1 for r in stack_rec.events if r.event == ev.MONITOR_UPDATE and since <= r.at < until and not r.data.get("replay"))


def _metric(stack: Stack, name: str, **labels: str) -> float:
    text = httpx.get(f"{stack.base_url}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_hostile_clients_are_refused_limited_and_disconnected_while_others_keep_receiving(
    stack: Stack, clips: Clips
) -> None:
    name, _ = stack.publish(clips.face)
    stack.start_stream(name)
    normal = stack.recorder(ev.NS_MONITOR)
    normal.wait_for(ev.MONITOR_UPDATE, lambda d: not d.get("replay"), timeout=30)
    t0 = time.monotonic()
    time.sleep(5.0)
    baseline = _live_updates(normal, t0, t0 + 5.0)
    assert baseline >= 8, baseline  # 每 400 ms 一条

    # 没有凭据：被拒绝
    anonymous = RawSocket(stack.base_url, ev.NS_MONITOR, None)
    assert not anonymous.accepted and '"reason":"token_missing"' in (anonymous._first(("44",)) or "").replace(" ", "")
    anonymous.close()

    # 错误的类型、缺字段、格式错误的包、保留事件名、未知事件：每个都得到带原因的 ack 或被忽略，连接不受影响
    teacher = RawSocket(stack.base_url, ev.NS_MONITOR, {"token": stack.monitor_token()["token"]})
    assert teacher.accepted
    time.sleep(1.0)  # 连接时的回放已收完
    mark = time.monotonic()
    bad_payloads = [5, "x", None, [], {"session_id": ["x"]}, {"session_id": "a" * 5000}, {"stream_name": {"$gt": ""}}, {}]
    for i, payload in enumerate(bad_payloads):
        teacher.event(ev.MONITOR_SUBSCRIBE, payload, ack=i)
    teacher.event(ev.MONITOR_SUBSCRIBE, ack=50)  # 缺载荷
    teacher.event("connect", {"token": "x"}, ack=60)  # 保留名：不会再次触发连接处理（回放）
    teacher.event("disconnect", ack=61)
    teacher.event(12345, ack=62)
    teacher.event("no.such.event", {"a": 1}, ack=63)
    for raw in ("42/monitor,not json", '42/monitor,{"a":1}', "42/monitor,[]", "49/monitor,[1]", "4"):
        teacher.send(raw)
    for i in range(len(bad_payloads)):
        assert teacher.ack(i)["ok"] is False, i
    assert teacher.ack(50)["ok"] is False
    assert teacher.ack(60)["reason"] == "reserved_event" and teacher.ack(61)["reason"] == "reserved_event"
    assert teacher.ack(62)["reason"] == "reserved_event" and teacher.ack(63)["reason"] == "unknown_event"
    time.sleep(1.0)
    assert not teacher.closed.is_set()
    assert [u for u in teacher.events(ev.MONITOR_UPDATE, since=mark) if u.get("replay")] == []
    teacher.event(ev.MONITOR_SUBSCRIBE, {"stream_name": name}, ack=70)
    assert teacher.ack(70)["ok"] is True, teacher.ack(70)  # 同一连接照常可用

    # 10 MB 的消息：连接被关闭
    student_session = stack.post("/api/create_session", {}).json()
    big = RawSocket(stack.base_url, ev.NS_DEFAULT, {"publish_token": student_session["publish_token"]})
    assert big.accepted
    try:
        big.event(ev.PPG_SAMPLES, {"session_id": student_session["session_id"], "samples": "A" * 10_000_000})
    except (websocket.WebSocketException, OSError):
        pass  # 服务端在发送途中就关闭了连接
    assert big.closed.wait(10), "超大消息后连接没有被关闭"

    # 每秒 1,000 个事件：先被告知限速，随后被断开；正常客户端的速率不受影响
    flooder = RawSocket(stack.base_url, ev.NS_MONITOR, {"token": stack.monitor_token(teacher="flooder")["token"]})
    assert flooder.accepted
    flood_start = time.monotonic()
    sent = 0
    while time.monotonic() - flood_start < 6.0 and not flooder.closed.is_set():
        try:
            for _ in range(100):
                flooder.event(ev.MONITOR_SUBSCRIBE, {"stream_name": name}, ack=sent)
                sent += 1
        except (websocket.WebSocketException, OSError):
            break
        time.sleep(max(0.0, flood_start + sent / 1000.0 - time.monotonic()))
    assert flooder.closed.wait(5), f"发了 {sent} 个事件仍未被断开"
    assert flooder.events(ev.RATE_LIMITED), "没有收到限速通知"
    flood_end = time.monotonic()
    during = _live_updates(normal, flood_start, flood_end)
    expected = baseline * (flood_end - flood_start) / 5.0
    print(f"洪泛：{sent} 个事件、{flood_end - flood_start:.1f} 秒后被断开；"
          f"正常客户端 {during} 条更新（平时同样时长约 {expected:.0f} 条）")
    assert during >= 0.8 * expected, (during, expected, sent)

    # 网关照常服务：健康检查、新连接
    assert httpx.get(f"{stack.base_url}/api/health", timeout=5).status_code == 200
    stack.recorder(ev.NS_MONITOR).wait_for(ev.MONITOR_UPDATE, timeout=10)
    refused = "proctor_gateway_socketio_events_refused_total"
    assert _metric(stack, refused, reason="rate_limited") > 100
    assert _metric(stack, refused, reason="reserved_or_malformed") >= 3
    assert _metric(stack, "proctor_gateway_socketio_forced_disconnects_total", reason="rate_limited") >= 1
    assert _metric(stack, "proctor_gateway_auth_refusals_total", endpoint="socketio/monitor", reason="token_missing") >= 1
    teacher.close()
