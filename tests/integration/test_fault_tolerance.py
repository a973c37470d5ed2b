"""故障注入（真实进程）：工作进程被 SIGKILL、Redis 重启。各自限时，期间持续检查流的归属。"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import datetime

from shared import events as ev
from tests.conftest import Clips, Stack
from tests.helpers import Recorder, wait_until

WORKER_PROCESSES = 2
WORKER_ENV = {"EMOTION_BACKEND": "none"}  # 只看调度与恢复：省下 TensorFlow 的 CPU
OWN_REDIS = True  # 测试里会重启 Redis


class OwnershipWatch(threading.Thread):
    """每 0.2 秒读一次 rtsp/status：记录任一时刻被两个存活工作进程同时声明的流。"""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.stop_event = threading.Event()
        self.double: list[tuple[str, list[str]]] = []
        self.samples = 0

    def run(self) -> None:
        while not self.stop_event.wait(0.2):
            try:
                status = self.stack.status()
            except Exception:  # noqa: BLE001 - Redis 重启期间网关可能 503
                continue
            self.samples += 1
            claims: dict[str, list[str]] = {}
            for w in status["workers"]:
                for name in w["streams"]:
                    claims.setdefault(name, []).append(w["worker_id"])
            self.double += [(n, ws) for n, ws in claims.items() if len(ws) > 1]


def _start(stack: Stack, clips: Clips, n: int) -> dict[str, str]:
    """推 n 路人脸流，为每路建会话并开始消费，返回 流名 -> 会话 ID。"""
    sessions = {}
    for _ in range(n):
        name, _ = stack.publish(clips.face)
        resp = stack.post("/api/create_session", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)})
        assert resp.status_code == 201, resp.text
        sessions[name] = resp.json()["session_id"]
        stack.streams.append(name)
    return sessions


def _updates_after(rec: Recorder, session_ids: set[str], since: float) -> set[str]:
    return {r.data["session_id"] for r in rec.events if r.event == ev.MONITOR_UPDATE and r.at > since} & session_ids


def test_killed_worker_streams_resume_within_10s_and_never_have_two_owners(stack: Stack, clips: Clips) -> None:
    monitor = stack.recorder(ev.NS_MONITOR)
    sessions = _start(stack, clips, 6)
    wait_until(lambda: len(_updates_after(monitor, set(sessions.values()), 0)) == 6, 40, "6 路流没有全部开始推送")
    status = stack.status()
    victim = next(w for w in status["workers"] if len(w["streams"]) == 3)  # 两个进程各 3 路
    victim_sessions = {sessions[n] for n in victim["streams"]}

    watch = OwnershipWatch(stack)
    watch.start()
    os.kill(victim["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    # 被杀进程之前发出的事件可能还在路上：只认 0.5 秒之后收到的
    wait_until(
        lambda: _updates_after(monitor, victim_sessions, killed_at + 0.5) == victim_sessions,
        10,
        "被杀进程的 3 路流没有在 10 秒内恢复推送",
    )
    # 监督进程重启了被杀的工作进程（新 PID）
    wait_until(
        lambda: any(w["pid"] != victim["pid"] and w["worker_id"] != victim["worker_id"] for w in stack.status()["workers"])
        and len(stack.status()["workers"]) >= 2,
        20,
        "监督进程没有重启被杀的工作进程",
    )
    watch.stop_event.set()
    watch.join(2)
    assert watch.samples > 10 and watch.double == [], watch.double
    # 重启的进程随后通过再均衡拿回一部分流：交接期间某路可能短暂无主，最终全部由存活进程持有
    wait_until(lambda: all(s["owner_alive"] for s in stack.status()["streams"]), 20, "有流没有被存活进程持有")


def test_redis_restart_keeps_sessions_reports_and_events_resume(
    stack: Stack, clips: Clips
) -> None:
    # 重启前结束一个会话：它的报告必须原样保留
    done = stack.post("/api/create_session", {})
    assert done.status_code == 201
    report_before = stack.post("/api/end_session", {"session_id": done.json()["session_id"]}).json()
    monitor = stack.recorder(ev.NS_MONITOR)
    sessions = _start(stack, clips, 4)
    ids = set(sessions.values())
    wait_until(lambda: len(_updates_after(monitor, ids, 0)) == 4, 40, "4 路流没有全部开始推送")

    stack.redis.stop()
    time.sleep(1.0)
    stack.redis.start()  # 同一数据目录、同一端口，AOF 重放
    restarted_at = time.monotonic()
    wait_until(lambda: _updates_after(monitor, ids, restarted_at + 0.5) == ids, 10, "Redis 重启后 10 秒内事件没有恢复")
    status = stack.status()
    assert {s["stream_name"] for s in status["streams"]} >= set(sessions)
    for name, session_id in sessions.items():
        live = stack.get(f"/api/sessions/{session_id}/report")
        assert live.status_code == 200 and live.json()["stream_name"] == name
    assert stack.get(f"/api/sessions/{done.json()['session_id']}/report").json() == report_before


def test_gateway_restart_client_reconnects_and_gets_replay_then_live_without_duplicates(
    stack: Stack, clips: Clips
) -> None:
    (session_id,) = _start(stack, clips, 1).values()
    monitor = stack.recorder(ev.NS_MONITOR, reconnect=True)
    wait_until(lambda: len(monitor.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id)) >= 5, 40, "没有实时更新")

    stack.restart_gateway(signal.SIGKILL)
    wait_until(lambda: len(monitor.connected_at) >= 2, 15, "客户端没有重连到重启后的网关")
    reconnected = monitor.connected_at[1]

    def after() -> list[dict]:
        # 重连之后收到的事件（回放在连接确认之后才发出）
        return [
            r.data
            for r in monitor.events
            if r.event == ev.MONITOR_UPDATE and r.data["session_id"] == session_id and r.at >= reconnected
        ]

    wait_until(lambda: sum(not d["replay"] for d in after()) >= 5, 20, "重连后没有实时更新")
    seq = after()
    flags = [d["replay"] for d in seq]
    n_replay = flags.index(False)
    assert n_replay >= 5 and not any(flags[n_replay:]), flags  # 先回放、后实时
    stamps = [d["timestamp"] for d in seq]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), stamps  # 有序、无重复
    newest = datetime.fromisoformat(stamps[n_replay - 1].replace("Z", "+00:00"))
    oldest = datetime.fromisoformat(stamps[0].replace("Z", "+00:00"))
    assert (newest - oldest).total_seconds() <= 10.5  # 只回放最近 10 秒


def test_monitor_client_joining_late_first_gets_last_10s(stack: Stack, clips: Clips) -> None:
    (session_id,) = _start(stack, clips, 1).values()
    early = stack.recorder(ev.NS_MONITOR)
    wait_until(lambda: len(early.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id)) >= 8, 40, "没有实时更新")
    room = stack.recorder(ev.NS_DEFAULT)
    assert room.subscribe(session_id=session_id)["ok"]
    time.sleep(1.5)
    seq = room.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id)
    flags = [d["replay"] for d in seq]
    assert flags[:5] == [True] * 5 and False in flags and not any(flags[flags.index(False) :])
    live_stamps = {d["timestamp"] for d in early.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id)}
    assert {d["timestamp"] for d in seq if d["replay"]} <= live_stamps  # 回放的正是先前发出的实时更新
