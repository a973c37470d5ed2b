"""工作进程的启动时间：流先在等待认领，然后启动工作进程池，测从启动起到

- ``alive_s``：全部工作进程在 ``/api/health`` 里存活（已连上 Redis、开始心跳）；
- ``claimed_s``：每路流都被认领并在解码（``rtsp/status`` 的 ``state == streaming``）；
- ``first_update_s``：每路流的第一条 ``monitor.update``；
- ``emotion_ready_s``：每路流第一条带情绪模型（``models`` 含 ``emotion``）的 ``monitor.update``（模型已加载）。

``python -m devtools.bench startup [--processes 2] [--streams 2] [--runs 3]``（每次都是新的进程，输出每次与最大值）
"""

from __future__ import annotations

import time

import psutil

from devtools.stack.processes import start_workers, stop_all

from .local import UpdateLog, local_stack


def _one_run(processes: int, streams: int, timeout_s: float) -> dict:
    with local_stack(0) as stack:
        log = UpdateLog(stack.base, stack.monitor_token())
        try:
            names = stack.publish(streams)
            for name in names:
                stack.post("/api/rtsp/start", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)})
            started = time.monotonic()
            workers = start_workers(stack.env, processes)
            marks: dict[str, float] = {}
            try:
                while time.monotonic() - started < timeout_s and len(marks) < 4:
                    now = time.monotonic() - started
                    status = stack.get("/api/rtsp/status")
                    if "alive_s" not in marks and sum(w["alive"] for w in status["workers"]) >= processes:
                        marks["alive_s"] = now
                    mine = [s for s in status["streams"] if s["stream_name"] in names]
                    if "claimed_s" not in marks and len(mine) == streams and all(s["state"] == "streaming" for s in mine):
                        marks["claimed_s"] = now
                    updates = [(t - started, d) for t, _, d in log.snapshot()]
                    sessions = {d["session_id"] for _, d in updates}
                    if "first_update_s" not in marks and len(sessions) >= streams:
                        marks["first_update_s"] = max(min(t for t, d in updates if d["session_id"] == s) for s in sessions)
                    with_emotion = {d["session_id"] for _, d in updates if "emotion" in d["models"]}
                    if "emotion_ready_s" not in marks and len(with_emotion) >= streams:
                        marks["emotion_ready_s"] = max(
                            min(t for t, d in updates if d["session_id"] == s and "emotion" in d["models"])
                            for s in with_emotion
                        )
                    time.sleep(0.1)
                rss = [p.memory_info().rss / 2**20 for p in psutil.Process(workers.pid).children()]
            finally:
                stop_all(workers)
        finally:
            log.close()
    return {**{k: round(v, 2) for k, v in marks.items()}, "worker_rss_mb": [round(r) for r in rss]}


def bench_startup(processes: int, streams: int, runs: int, timeout_s: float = 90.0) -> dict:
    results = [_one_run(processes, streams, timeout_s) for _ in range(runs)]
    keys = ("alive_s", "claimed_s", "first_update_s", "emotion_ready_s")
    return {
        "benchmark": "startup",
        "processes": processes,
        "streams": streams,
        "runs": results,
        "max": {k: max((r[k] for r in results if k in r), default=None) for k in keys},
        "machine": {"cpus": psutil.cpu_count()},
    }
