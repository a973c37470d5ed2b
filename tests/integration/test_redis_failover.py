"""Redis 没有单点故障（真实的 Sentinel：同一个 redis-server 以 sentinel 模式运行，一主一从）：网关、工作进程与 Socket.IO
的跨进程广播都用 ``redis+sentinel://`` 地址。SIGKILL 主节点后 Sentinel 把从节点提升为主节点，服务在 15 秒内恢复推送，
会话一个不丢，之后的写入落在新的主节点上。"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from devtools.stack.servers import EmbeddedRedis, EmbeddedSentinel, RtspServer, stop_process
from shared import events as ev
from tests.conftest import Clips, Stack, _make_stack, _teardown
from tests.helpers import wait_until

RESUME_WITHIN_S = 15.0


@pytest.fixture(scope="module")
def sentinel_stack(
    rtsp_server: RtspServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, EmbeddedRedis, EmbeddedRedis, EmbeddedSentinel]]:
    primary = EmbeddedRedis(tmp_path_factory.mktemp("primary")).start()
    replica = EmbeddedRedis(tmp_path_factory.mktemp("replica"), extra_args=("--replicaof", "127.0.0.1", str(primary.port)))
    replica.start()
    sentinel = EmbeddedSentinel(tmp_path_factory.mktemp("sentinel"), primary.port).start()
    try:
        stack = _make_stack(primary, rtsp_server, processes=1, redis_url=sentinel.url())
        try:
            yield stack, primary, replica, sentinel
        finally:
            _teardown(stack)
    finally:
        for server in (sentinel, replica, primary):
            server.stop()


def _replicated(primary: EmbeddedRedis, replica: EmbeddedRedis) -> bool:
    p, r = redis.Redis(port=primary.port), redis.Redis(port=replica.port)
    try:
        return r.info("replication")["master_link_status"] == "up" and (
            p.info("replication")["master_repl_offset"] == r.info("replication")["slave_repl_offset"]
        )
    finally:
        p.close()
        r.close()


def test_primary_failure_loses_no_session_and_events_resume(
    sentinel_stack: tuple[Stack, EmbeddedRedis, EmbeddedRedis, EmbeddedSentinel], clips: Clips
) -> None:
    stack, primary, replica, sentinel = sentinel_stack
    name, _ = stack.publish(clips.face, f"exam-{uuid.uuid4()}-user-1")
    session = stack.post("/api/create_session", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)}).json()
    stack.streams.append(name)
    others = [stack.post("/api/create_session", {}).json()["session_id"] for _ in range(3)]
    monitor = stack.recorder(ev.NS_MONITOR, reconnect=True)
    monitor.wait_for(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session["session_id"] and not d["replay"], timeout=40)
    wait_until(lambda: _replicated(primary, replica), 10, "从节点跟上主节点")

    stop_process(primary.proc, sig=signal.SIGKILL)
    killed_at = time.monotonic()
    promoted = wait_until(
        lambda: redis.Redis(port=sentinel.port).sentinel_get_master_addr_by_name("mymaster")[1] == replica.port,
        RESUME_WITHIN_S, "Sentinel 没有提升从节点",
    )  # fmt: skip
    assert promoted
    update = monitor.wait_for(
        ev.MONITOR_UPDATE,
        lambda d: d["session_id"] == session["session_id"] and not d["replay"],
        timeout=RESUME_WITHIN_S,
        since=time.monotonic(),
    )
    resumed_s = time.monotonic() - killed_at
    print(f"事件在主节点被杀后 {resumed_s:.1f} 秒恢复")
    assert update and resumed_s <= RESUME_WITHIN_S, resumed_s
    # 会话一个不丢；新的会话写在新的主节点上
    for sid in [session["session_id"], *others]:
        resp = wait_until(lambda sid=sid: (r := stack.get(f"/api/sessions/{sid}/report")).status_code == 200 and r, 10, sid)
        assert resp.json()["session_id"] == sid
    fresh = stack.post("/api/create_session", {})
    assert fresh.status_code == 201, fresh.text
    new_primary = redis.Redis(port=replica.port)
    assert new_primary.exists(f"{stack.env['KEY_PREFIX']}session:{fresh.json()['session_id']}")
    new_primary.close()
