"""可复现的基准，输出 JSON。

``python -m devtools.bench pipeline --streams 4 --seconds 30 --processes 1``
``python -m devtools.bench accuracy``（见 accuracy.py / scenarios.py / pose.py / costs.py）
``python -m devtools.bench soak --minutes 10``（见 soak.py）
``python -m devtools.bench throughput --baseline seed``（见 throughput.py：达标的最大路数，与种子设计对比）
``python -m devtools.bench fanout``（见 fanout.py：网关扇出，与 Node.js 参照对比）
``python -m devtools.bench startup``（见 startup.py：工作进程启动到认领、情绪模型就绪）
``python -m devtools.bench memory``（见 memory.py：每路流增加的 RSS、恒定负载下的走势）
``python -m devtools.bench wall``（见 wall.py：300 个会话时教师墙在 Chromium 里每秒画出的更新与最长主线程任务）

用真实部件（嵌入式 Redis、rtsp-server-perl、FFmpeg 推流、网关、工作进程、python-socketio 客户端）
测量：首个 monitor.update 的到达时间、工作进程内延迟（帧解码 -> 发出，payload 的 latency_ms）、
投递延迟（payload.timestamp -> 客户端收到，同一台机器同一时钟）、每路流的 CPU 占用、帧率与丢帧。
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import psutil

from .local import UpdateLog, delivery_ms, local_stack, percentile


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def bench_pipeline(streams: int, seconds: float, processes: int) -> dict:
    with local_stack(processes) as stack:
        log = UpdateLog(stack.base, stack.monitor_token())
        try:
            names = stack.publish(streams)
            started: dict[str, float] = {}
            for name in names:
                started[name] = time.monotonic()
                stack.post("/api/rtsp/start", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)})
            warm_deadline = time.monotonic() + 30
            while time.monotonic() < warm_deadline:
                if {d["session_id"] for _, _, d in log.snapshot()} >= set(names):
                    break
                time.sleep(0.1)
            first: dict[str, float] = {}
            for at, _, d in log.snapshot():
                first.setdefault(d["session_id"], at - started[d["session_id"]])
            worker_pids = [c.pid for c in psutil.Process(stack.workers.pid).children()]
            gateway_pid = stack.gateway.pid
            cpu0, gw0, t0 = _cpu_seconds(worker_pids), _cpu_seconds([gateway_pid]), time.monotonic()
            mark = len(log.snapshot())
            time.sleep(seconds)
            cpu1, gw1, t1 = _cpu_seconds(worker_pids), _cpu_seconds([gateway_pid]), time.monotonic()
            window = log.snapshot(mark)
            status = stack.get("/api/rtsp/status")
        finally:
            log.close()

    worker_ms = [d["latency_ms"] for _, _, d in window if d["latency_ms"] is not None]
    delivered = [delivery_ms(wall, d) for _, wall, d in window]
    e2e_ms = [a + b for a, b in zip(worker_ms, delivered)]
    elapsed = t1 - t0
    worker_cores = (cpu1 - cpu0) / elapsed
    return {
        "benchmark": "pipeline",
        "streams": streams,
        "worker_processes": processes,
        "seconds": round(elapsed, 1),
        "time_to_first_update_s": {
            "max": round(max(first.values()), 2) if first else None,
            "median": round(statistics.median(first.values()), 2) if first else None,
            "streams_with_data": len(first),
        },
        "monitor_update_hz_per_stream": round(len(window) / elapsed / streams, 2),
        "worker_latency_ms": {"p50": percentile(worker_ms, 0.5), "p95": percentile(worker_ms, 0.95)},
        "delivery_ms": {"p50": percentile(delivered, 0.5), "p95": percentile(delivered, 0.95)},
        "decode_to_client_ms": {"p50": percentile(e2e_ms, 0.5), "p95": percentile(e2e_ms, 0.95)},
        "worker_cpu_cores": round(worker_cores, 3),
        "worker_cpu_cores_per_stream": round(worker_cores / streams, 3),
        "gateway_cpu_cores": round((gw1 - gw0) / elapsed, 3),
        "decode_fps": [s["fps"] for s in status["streams"]],
        "analysis_fps": [s["analysis_fps"] for s in status["streams"]],
        "dropped_frames": sum(s["dropped_frames"] for s in status["streams"]),
        "machine": {"cpus": psutil.cpu_count(), "source": "640x360 H.264 15 fps, 1 face"},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench", description="基准（输出 JSON）")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pipeline", help="端到端：首事件时间、延迟、每路 CPU")
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--processes", type=int, default=1)
    a = sub.add_parser("accuracy", help="分析精度：rPPG（多心率、运动、H.264 码率）、异常检出率、各分析器开销")
    a.add_argument(
        "--parts",
        default="rppg,anomalies,pose,identity,costs",
        help="逗号分隔：rppg, anomalies, pose（头部姿态的角度误差）, identity（换人与同一人）, costs, "
        "browser（Chromium 编码器，实时、较慢）, "
        "client（学生端编码前采样，经完整部署与 Chromium 学生端页面，实时、较慢）"
    )
    a.add_argument("--browser-kbps", type=int, default=1500, help="browser / client：学生端的视频码率上限（kbit/s）")
    a.add_argument("--heart-rates", default="50,65,80,95,110,125,140", help="逗号分隔的心率（bpm）")
    a.add_argument("--clip-seconds", type=float, default=20.0)
    a.add_argument("--codecs", default="all", help="逗号分隔的编码设置名（raw, h264_1000k, ...），默认全部")
    a.add_argument("--seeds", type=int, default=3, help="异常场景：每种异常 2×seeds 个场景（静止/运动）")
    k = sub.add_parser("soak", help="长时间运行：定期 SIGKILL 工作进程，统计空档、内存走势与报告完整性")
    k.add_argument("--minutes", type=float, default=10.0)
    k.add_argument("--streams", type=int, default=8)
    k.add_argument("--processes", type=int, default=2)
    k.add_argument("--kill-every", type=float, default=120.0, help="每隔多少秒杀一个工作进程")
    k.add_argument("--emotion-backend", default="auto", help="EMOTION_BACKEND（none 可在 CPU 不足时只看调度与恢复）")
    t = sub.add_parser("throughput", help="达标（p95 <= 200 ms、每路分析帧率 >= 90%）的最大路数，可与种子设计对比")
    t.add_argument("--processes", type=int, default=2, help="工作进程数（默认与 make run、compose 相同）")
    t.add_argument("--seconds", type=float, default=30.0, help="每次探测的测量时长")
    t.add_argument("--start", type=int, default=6, help="搜索的起点路数")
    t.add_argument("--limit", type=int, default=48, help="搜索的上限路数")
    t.add_argument("--streams", type=int, default=None, help="只测这么多路（不搜索），例如 2 倍过载")
    t.add_argument("--baseline", choices=["seed"], default=None)
    f = sub.add_parser("fanout", help="网关扇出：S 个会话的全部事件投递给 C 个 /monitor 客户端，与 Node.js 参照对比")
    f.add_argument("--sessions", type=int, default=300)
    f.add_argument("--clients", type=int, default=20)
    f.add_argument("--rate", type=float, default=2.5, help="每个会话每秒的分析次数")
    f.add_argument("--seconds", type=float, default=20.0, help="每项的测量时长")
    f.add_argument("--targets", default="gateway,gateway_plain,reference", help="逗号分隔：gateway, gateway_plain, reference")
    s = sub.add_parser("startup", help="工作进程启动：存活、认领、首条事件、情绪模型就绪各用多久")
    s.add_argument("--processes", type=int, default=2)
    s.add_argument("--streams", type=int, default=2)
    s.add_argument("--runs", type=int, default=3)
    w = sub.add_parser("wall", help="教师墙：S 个会话的更新推给 Chromium 里的 /monitor，量每秒画出的更新与最长主线程任务")
    w.add_argument("--sessions", type=int, default=300)
    w.add_argument("--rate", type=float, default=2.5, help="每个会话每秒的分析次数")
    w.add_argument("--seconds", type=float, default=60.0)
    m = sub.add_parser("memory", help="工作进程每路流增加的 RSS，恒定负载下的内存走势")
    m.add_argument("--steps", default="0,4,8", help="逗号分隔的流数（逐级增加）")
    m.add_argument("--settle", type=float, default=45.0, help="每级稳定多少秒后记 RSS")
    m.add_argument("--minutes", type=float, default=10.0, help="在最后一级保持多少分钟")
    m.add_argument("--env", action="append", default=[], help="工作进程的额外环境变量 NAME=VALUE（可重复）")
    args = parser.parse_args(argv)
    if args.command == "wall":
        from .wall import bench_wall

        result = bench_wall(args.sessions, args.rate, args.seconds)
    elif args.command == "memory":
        from .memory import bench_memory

        extra = dict(item.split("=", 1) for item in args.env)
        result = bench_memory([int(x) for x in args.steps.split(",")], args.settle, args.minutes, **extra)
    elif args.command == "startup":
        from .startup import bench_startup

        result = bench_startup(args.processes, args.streams, args.runs)
    elif args.command == "fanout":
        from .fanout import bench_fanout

        result = bench_fanout(args.sessions, args.clients, args.rate, args.seconds, args.targets.split(","))
    elif args.command == "throughput":
        from .throughput import bench_throughput

        result = bench_throughput(args.processes, args.seconds, args.start, args.limit, args.streams, args.baseline)
    elif args.command == "pipeline":
        result = bench_pipeline(args.streams, args.seconds, args.processes)
    elif args.command == "soak":
        from .soak import bench_soak

        result = bench_soak(args.minutes, args.streams, args.processes, args.kill_every, args.emotion_backend)
    else:
        result = {"benchmark": "accuracy"}
        parts = {p.strip() for p in args.parts.split(",")}
        if "rppg" in parts:
            from .accuracy import CODECS, bench_rppg

            hrs = [float(x) for x in args.heart_rates.split(",") if x.strip()]
            codecs = CODECS if args.codecs == "all" else tuple(c for c in CODECS if c.name in args.codecs.split(","))
            result["rppg"] = bench_rppg(hrs, args.clip_seconds, codecs)
        if "browser" in parts:
            from .browser import bench_browser

            hrs = [float(x) for x in args.heart_rates.split(",") if x.strip()]
            result["rppg_browser"] = bench_browser(hrs, args.clip_seconds, args.browser_kbps)
        if "client" in parts:
            from .client import bench_client

            hrs = [float(x) for x in args.heart_rates.split(",") if x.strip()]
            result["rppg_client"] = bench_client(hrs, args.clip_seconds, args.browser_kbps)
        if "anomalies" in parts:
            from .scenarios import bench_anomalies

            result["anomalies"] = bench_anomalies(args.seeds)
        if "pose" in parts:
            from .pose import bench_pose

            result["pose"] = bench_pose(args.seeds)
        if "identity" in parts:
            from .pose import bench_identity

            result["identity"] = bench_identity(args.seeds)
        if "costs" in parts:
            from .costs import bench_costs

            result["costs"] = bench_costs()
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
