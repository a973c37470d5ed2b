"""网关的扇出（真实 Redis + 真实网关 + python-socketio 客户端；事件由工作进程的发送代码发出：
``workers.output.routing.route`` + ``BatchEmitter``，一次分析一条 Redis 消息）：

- 没有声明投递方式的连接照旧逐条收到 monitor.update 与兼容旧前端的事件；
- 声明 ``{events: [monitor.update], batch: true}`` 的连接只收 ``monitor.batch``，里面是同样的 monitor.update、
  没有旧事件名，每批间隔约 50 ms；
- 限定考试的批量连接只收到该考试的会话（批不会把别的房间的事件带给它）；
- 不合法的投递方式：连接被拒绝并说明原因；频道上格式错误的事件批被忽略，之后的事件照常投递；
- 事件高速到达时加入的连接（墙的逐条与攒批连接、订阅单个会话的连接）：先回放、后实时，一条不漏、不重复、不交错。
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from devtools.bench.fanout_feed import SyntheticSession
from shared import events as ev
from shared.keys import RedisKeys
from tests.conftest import Stack
from tests.helpers import Recorder, connect_refusal, wait_until
from workers.output.emitter import BatchEmitter
from workers.output.publisher import EventPublisher, ReplayBuffer
from workers.output.routing import Emission

WORKER_PROCESSES = 0
LEGACY = (ev.VIDEO_EMOTION_RESULT, ev.RTSP_VIDEO_ANALYSIS, ev.HEART_RATE_RESULT, ev.RTSP_HEART_RATE_ANALYSIS)


def _emitter(stack: Stack) -> BatchEmitter:
    client = redis.Redis.from_url(stack.redis.url, socket_timeout=5)
    return BatchEmitter(client, RedisKeys(stack.env["KEY_PREFIX"]).socketio_channel)


def _send(stack: Stack, sessions: list[SyntheticSession], steps: int, interval_s: float = 0.02) -> None:
    emitter = _emitter(stack)
    for _ in range(steps):
        for s in sessions:
            emitter.emit_batch(s.step(time.time()))
        time.sleep(interval_s)


def _batched(rec: Recorder) -> list[tuple[str, dict]]:
    return [tuple(item) for batch in rec.matching(ev.MONITOR_BATCH) for item in batch["events"]]  # type: ignore[misc]


def test_batched_and_plain_connections_get_the_same_updates(stack: Stack) -> None:
    group = [SyntheticSession(f"sess-{i}", f"exam-x-user-{i}", "x") for i in range(3)]
    plain = stack.recorder(ev.NS_MONITOR)
    wall = stack.recorder(ev.NS_MONITOR, auth={"token": stack.monitor_token()["token"], "events": [ev.MONITOR_UPDATE],
                                               "batch": True})
    _send(stack, group, steps=20)
    expected = 3 * 20
    wait_until(lambda: len(plain.matching(ev.MONITOR_UPDATE)) >= expected, 10, "plain connection got every update")
    wait_until(lambda: len(_batched(wall)) >= expected, 10, "batched connection got every update")
    time.sleep(0.3)

    plain_updates = plain.matching(ev.MONITOR_UPDATE)
    assert len(plain_updates) == expected
    for name in LEGACY:  # 旧前端的事件照旧逐条送达
        assert len(plain.matching(name)) == expected, name
    items = _batched(wall)
    assert {name for name, _ in items} == {ev.MONITOR_UPDATE}  # 声明之外的事件不投递
    assert [d for _, d in items] == plain_updates  # 同样的负载、同样的顺序
    assert wall.matching(ev.MONITOR_UPDATE) == [] and all(not wall.matching(n) for n in LEGACY)
    batches = len(wall.matching(ev.MONITOR_BATCH))
    assert 3 <= batches <= 20, batches  # 60 条分成约 0.4 s / 50 ms 批，而不是 60 条消息


def test_batched_connection_scoped_to_an_exam_sees_only_that_exam(stack: Stack) -> None:
    mine = SyntheticSession("sess-a", "exam-a-user-1", "a")
    other = SyntheticSession("sess-b", "exam-b-user-1", "b")
    token = stack.monitor_token(exam_id="a")["token"]
    wall = stack.recorder(ev.NS_MONITOR, auth={"token": token, "batch": True})
    everything = stack.recorder(ev.NS_MONITOR, auth={"token": stack.monitor_token()["token"], "batch": True})
    _send(stack, [mine, other], steps=10)
    wait_until(lambda: len([i for i in _batched(everything) if i[0] == ev.MONITOR_UPDATE]) >= 20, 10, "unscoped wall")
    time.sleep(0.3)
    seen = {(name, d["session_id"]) for name, d in _batched(wall)}
    assert {sid for _, sid in seen} == {"sess-a"}
    assert {name for name, _ in seen} == {ev.MONITOR_UPDATE, *LEGACY}  # 没有声明 events：全部分析事件（同一批里）
    assert {d["session_id"] for name, d in _batched(everything)} == {"sess-a", "sess-b"}


def test_declared_delivery_does_not_hold_back_other_events(stack: Stack) -> None:
    """只收 monitor.update、攒批的连接照样立即收到 auth.expired（撤销授权后随即被断开）。"""
    token = stack.monitor_token()
    wall = stack.recorder(ev.NS_MONITOR, auth={"token": token["token"], "events": [ev.MONITOR_UPDATE], "batch": True})
    expired: list[dict] = []
    wall.client.on(ev.AUTH_EXPIRED, expired.append, namespace=ev.NS_MONITOR)
    resp = stack.post("/api/monitor/revoke", {"grant_id": token["grant_id"]})
    assert resp.status_code == 200, resp.text
    wait_until(lambda: expired, 10, "auth.expired on a batched, filtered connection")
    assert expired[0]["reason"] == "token_revoked"


@pytest.mark.parametrize("options", [{"events": ["no.such.event"]}, {"batch": "yes"}, {"events": "monitor.update"}])
def test_invalid_delivery_options_are_refused_with_a_reason(stack: Stack, options: dict) -> None:
    refusal = connect_refusal(stack.base_url, ev.NS_MONITOR, {"token": stack.monitor_token()["token"], **options})
    assert refusal is not None and refusal["data"]["reason"] == "bad_delivery_options", refusal
    assert "events" in refusal["message"] or "batch" in refusal["message"]


def test_malformed_batch_on_the_channel_is_ignored(stack: Stack) -> None:
    wall = stack.recorder(ev.NS_MONITOR, auth={"token": stack.monitor_token()["token"], "batch": True})
    client = redis.Redis.from_url(stack.redis.url, socket_timeout=5)
    channel = RedisKeys(stack.env["KEY_PREFIX"]).socketio_channel
    client.publish(channel, b'{"method":"emit_batch","payloads":[],"emissions":[["monitor.update",3,"/monitor","all"]]}')
    client.publish(channel, b'{"method":"emit_batch", not json')
    _send(stack, [SyntheticSession("sess-ok", "exam-x-user-9", "x")], steps=2)
    wait_until(lambda: len(_batched(wall)) >= 2 * (1 + len(LEGACY)), 10, "events after the malformed ones")
    assert stack.gateway.poll() is None


def test_connections_joining_a_fast_stream_get_replay_then_every_live_update_once(stack: Stack) -> None:
    """一个会话每秒 100 次更新（经工作进程的发布线程：先写回放缓冲、再发出），期间陆续加入的连接收到的
    monitor.update 恰好是所发序列的一段连续后缀：回放在前、实时在后，没有漏掉、重复或交错的。"""
    resp = stack.post("/api/create_session", {"stream_name": "exam-fast-user-1", "rtsp_url": "rtsp://127.0.0.1:9/none"})
    assert resp.status_code == 201, resp.text
    session_id = resp.json()["session_id"]
    source = SyntheticSession(session_id, "exam-fast-user-1", "fast")
    client = redis.Redis.from_url(stack.redis.url, socket_timeout=5)
    publisher = EventPublisher(_emitter(stack), replay=ReplayBuffer(client, RedisKeys(stack.env["KEY_PREFIX"])))
    publisher.start()
    sent: list[str] = []
    stop = threading.Event()

    def feed() -> None:
        start = time.time()
        while not stop.is_set():
            batch = [Emission(*e) for e in source.step(start + len(sent) * 0.01)]  # 时间戳各不相同
            update = next(e.data for e in batch if e.event == ev.MONITOR_UPDATE)
            sent.append(update["timestamp"])
            publisher.submit(batch, replay=(session_id, update))
            time.sleep(0.01)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        wait_until(lambda: len(sent) >= 100, 10, "feed started")
        plain = stack.recorder(ev.NS_MONITOR)
        batched = stack.recorder(ev.NS_MONITOR, auth={"token": stack.monitor_token()["token"], "batch": True})
        room = stack.recorder(ev.NS_DEFAULT)
        assert room.subscribe(session_id=session_id)["ok"]
        time.sleep(1.5)
    finally:
        stop.set()
        feeder.join(5)
        publisher.close()
    wait_until(lambda: plain.matching(ev.MONITOR_UPDATE) and plain.matching(ev.MONITOR_UPDATE)[-1]["timestamp"] == sent[-1],
               10, "last update reached the wall")
    time.sleep(0.3)

    received = {
        "plain": plain.matching(ev.MONITOR_UPDATE),
        "batched": [d for name, d in _batched(batched) if name == ev.MONITOR_UPDATE],
        "subscribed": room.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id),
    }
    for name, updates in received.items():
        stamps = [d["timestamp"] for d in updates]
        flags = [d["replay"] for d in updates]
        first_live = flags.index(False)
        assert first_live >= 20 and not any(flags[first_live:]), (name, flags)  # 先回放、后实时
        start = sent.index(stamps[0])
        assert stamps == sent[start:], (name, len(stamps), len(sent) - start)  # 连续、不重复、到最后一条
