"""长时间运行：N 路流、每隔一段时间 SIGKILL 一个工作进程（监督进程会重启它）。

统计每个会话的 monitor.update 间隔（超过 10 秒的空档数必须为 0）、各进程内存（RSS）走势、
结束时每个会话报告是否完整（丢失的报告数必须为 0）。
"""

from __future__ import annotations

import os
import signal
import time

import psutil

from .local import UpdateLog, local_stack

GAP_LIMIT_S = 10.0


def _rss_mb(pid: int) -> float | None:
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return None


def _memory_summary(samples: dict[int, list[tuple[float, float]]]) -> dict:
    """每个进程：首/末/最大 RSS，以及后半程的增长（持平说明没有泄漏）。"""
    out = {}
    for pid, series in samples.items():
        if len(series) < 3:
            continue
        rss = [mb for _, mb in series]
        half = rss[len(rss) // 2]
        out[str(pid)] = {
            "lived_s": round(series[-1][0] - series[0][0], 1),
            "rss_first_mb": round(rss[0], 1),
            "rss_last_mb": round(rss[-1], 1),
            "rss_max_mb": round(max(rss), 1),
            "growth_second_half_mb": round(rss[-1] - half, 1),
        }
    return out


def bench_soak(
    minutes: float,
    streams: int,
    processes: int,
    kill_every_s: float,
    emotion_backend: str = "auto",
    sample_every_s: float = 10.0,
) -> dict:
    with local_stack(processes, EMOTION_BACKEND=emotion_backend) as stack:
        log = UpdateLog(stack.base, stack.monitor_token())
        try:
            names = stack.publish(streams)
            sessions = {
                name: stack.post("/api/create_session", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)})[
                    "session_id"
                ]
                for name in names
            }
            ids = set(sessions.values())
            deadline = time.monotonic() + 90
            while {d["session_id"] for _, _, d in log.snapshot()} < ids and time.monotonic() < deadline:
                time.sleep(0.2)
            started = time.monotonic()
            end = started + minutes * 60
            next_kill, next_sample = started + kill_every_s, started
            kills: list[dict] = []
            memory: dict[int, list[tuple[float, float]]] = {}
            while (now := time.monotonic()) < end:
                if now >= next_sample:
                    next_sample += sample_every_s
                    pids = [stack.gateway.pid] + [c.pid for c in psutil.Process(stack.workers.pid).children()]
                    for pid in pids:
                        if (mb := _rss_mb(pid)) is not None:
                            memory.setdefault(pid, []).append((now - started, mb))
                if now >= next_kill:
                    next_kill += kill_every_s
                    workers = stack.get("/api/rtsp/status")["workers"]
                    victim = max(workers, key=lambda w: len(w["streams"]), default=None)
                    if victim is not None:
                        os.kill(victim["pid"], signal.SIGKILL)
                        kills.append({"at_s": round(now - started, 1), "pid": victim["pid"], "streams": len(victim["streams"])})
                time.sleep(0.25)
            received = log.snapshot()
            reports = {sid: stack.post("/api/end_session", {"session_id": sid}) for sid in ids}
            stored = {sid: stack.get(f"/api/sessions/{sid}/report") for sid in ids}
        finally:
            log.close()

    gaps: dict[str, float] = {}
    long_gaps = []
    for sid in ids:
        times = [started] + [at for at, _, d in received if d["session_id"] == sid and at >= started] + [end]
        gaps[sid] = max(b - a for a, b in zip(times, times[1:]))
        long_gaps += [
            {"session": sid[-12:], "from_s": round(a - started, 1), "gap_s": round(b - a, 1)}
            for a, b in zip(times, times[1:])
            if b - a > GAP_LIMIT_S
        ]
    lost = [
        sid
        for sid in ids
        if not reports[sid]["final"] or reports[sid]["streaming_seconds"] <= 0 or stored[sid] != reports[sid]
    ]
    window = [d for at, _, d in received if at >= started]
    return {
        "benchmark": "soak",
        "minutes": minutes,
        "streams": streams,
        "worker_processes": processes,
        "emotion_backend": emotion_backend,
        "kills": kills,
        "events_delivered": len(window),
        "events_per_stream_hz": round(len(window) / max(1e-9, minutes * 60) / streams, 2),
        "max_gap_s": round(max(gaps.values()), 1),
        "gaps_over_10s": len(long_gaps),
        "long_gaps": sorted(long_gaps, key=lambda g: g["from_s"]),
        "memory": _memory_summary(memory),
        "lost_reports": len(lost),
        "reports_streaming_seconds": sorted(round(r["streaming_seconds"], 1) for r in reports.values()),
    }
