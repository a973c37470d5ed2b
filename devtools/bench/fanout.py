"""网关扇出基准：S 个会话 x 每秒 ``rate`` 次分析（工作进程的全部事件），经 Redis 投递给 C 个 /monitor 客户端。

同一次运行、同一个 Redis、同一组客户端（``fanout_js/clients.js``：npm ``socket.io-client``，websocket 传输）依次测：

- ``gateway``：本项目的网关，客户端声明 ``batch: true``（全部分析事件，攒成 ``monitor.batch``），事件源为
  工作进程的发送代码（``fanout_feed.py``：一次分析一条 Redis 消息）；
- ``gateway_plain``：同一个网关，客户端不声明投递方式（与旧前端一样逐条收全部事件）；
- ``reference``：Node.js 参照（``fanout_js/reference_server.js``：npm ``socket.io`` + ``@socket.io/redis-adapter``），
  由 ``@socket.io/redis-emitter``（``fanout_js/feed.js``）发出同样的事件（同一份负载，每条事件一条 Redis 消息）。

每项输出：每秒投递数（一条事件送到一个客户端计 1）、``monitor.update`` 从发出到客户端收到的延迟 p50/p95/p99、
服务端进程占用的核数、每个服务端 CPU 秒的投递数；最后是网关与参照之比。

``python -m devtools.bench fanout [--sessions 300] [--clients 20] [--rate 2.5] [--seconds 20] [--targets gateway,reference]``
``python -m devtools.bench fanout --clients 1000 --targets gateway``（python-socketio issue 963：广播时能连上多少客户端）
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil

from devtools.stack.processes import gateway_secrets, monitor_token, start_gateway, wait_healthy
from devtools.stack.servers import EmbeddedRedis, free_port, python_env, stop_process
from shared.keys import RedisKeys

from . import fanout_feed

JS = Path(__file__).parent / "fanout_js"
WARMUP_S = 3.0


def _node_modules() -> None:
    if not (JS / "node_modules" / ".package-lock.json").exists():
        subprocess.run(["npm", "ci", "--prefix", str(JS), "--no-audit", "--no-fund", "--loglevel=error"], check=True)


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _json_line(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON in output: {text[-500:]}")


@dataclass
class _Server:
    """一个被测的服务端：地址、进程、客户端的 auth 参数、以及启动事件源的命令。"""

    url: str
    proc: subprocess.Popen
    client_args: list[str]
    feed_cmd: list[str]
    env: dict


def _gateway(stack: ExitStack, redis_url: str, batch: bool) -> _Server:
    port, prefix = free_port(), f"fan{uuid.uuid4().hex[:6]}:"
    secrets = gateway_secrets()
    env = python_env(**secrets, REDIS_URL=redis_url, KEY_PREFIX=prefix, GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(port),
                     LOG_LEVEL="WARNING")
    proc = start_gateway(env)
    stack.callback(stop_process, proc)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, proc, timeout=60)
    token = monitor_token(base, secrets["API_KEY"], teacher="bench", ttl_s=86400)["token"]
    feed = [sys.executable, "-m", "devtools.bench.fanout_feed", "--redis", redis_url,
            "--channel", RedisKeys(prefix).socketio_channel]  # fmt: skip
    return _Server(base, proc, ["--token", token] + (["--batch"] if batch else []), feed, env)


def _reference(stack: ExitStack, redis_url: str, steps_file: Path) -> _Server:
    port = free_port()
    proc = subprocess.Popen(["node", str(JS / "reference_server.js"), "--port", str(port), "--redis", redis_url],
                            stdout=subprocess.PIPE, text=True)
    stack.callback(stop_process, proc)
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    assert ready.get("ready"), ready
    feed = ["node", str(JS / "feed.js"), "--redis", redis_url, "--steps", str(steps_file)]
    return _Server(f"http://127.0.0.1:{port}", proc, [], feed, {})


def _measure(server: _Server, sessions: int, clients: int, rate: float, seconds: float) -> dict:
    """客户端连上之后启动事件源；在客户端的测量窗口内记服务端进程的 CPU。"""
    client_cmd = ["node", str(JS / "clients.js"), "--url", server.url, "--namespace", "/monitor",
                  "--clients", str(clients), "--seconds", str(seconds), "--warmup", str(WARMUP_S), *server.client_args]
    feed_s = WARMUP_S + seconds + 30.0  # 客户端连接所需的时间之外留足余量；测完即停
    feed_cmd = [*server.feed_cmd, "--rate", str(rate), "--seconds", str(feed_s)]
    if server.feed_cmd[0] == sys.executable:
        feed_cmd += ["--sessions", str(sessions)]
    started = time.monotonic()
    client_proc = subprocess.Popen(client_cmd, stdout=subprocess.PIPE, text=True)
    feed_proc = subprocess.Popen(feed_cmd, stdout=subprocess.PIPE, text=True, env=server.env or None)
    srv = psutil.Process(server.proc.pid)
    try:
        time.sleep(WARMUP_S + 1.0)
        cpu0, t0 = _cpu(srv), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = _cpu(srv), time.monotonic()
        out, _ = client_proc.communicate(timeout=seconds + 120)
    finally:
        stop_process(feed_proc)
        stop_process(client_proc)
    result = _json_line(out)
    cores = (cpu1 - cpu0) / (t1 - t0)
    rss = srv.memory_info().rss / 2**20
    expected = sessions * rate * 5 * clients  # 每次分析发给 /monitor 墙的 5 条事件（monitor.update 与 4 个旧事件名）
    result.update({
        "expected_deliveries_per_s": expected,
        "server_cores": round(cores, 3),
        "server_rss_mb": round(rss, 1),
        "deliveries_per_cpu_s": round(result["deliveries_per_s"] / cores) if cores > 0 else None,
        "wall_s": round(time.monotonic() - started, 1),
    })
    return result


def bench_fanout(sessions: int, clients: int, rate: float, seconds: float, targets: list[str]) -> dict:
    _node_modules()
    tmp = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    steps_file = tmp / "steps.json"
    group = fanout_feed.sessions(sessions)
    fanout_feed.write_steps(str(steps_file), group)
    update_bytes = len(json.dumps(group[0].step(time.time())[0][1], ensure_ascii=False, separators=(",", ":")))
    out: dict = {
        "bench": "fanout", "sessions": sessions, "clients": clients, "rate_per_session": rate, "seconds": seconds,
        "monitor_update_bytes": update_bytes, "events_per_step_to_monitor_wall": 5, "cpu_count": psutil.cpu_count(),
    }
    with ExitStack() as stack:
        redis = EmbeddedRedis(tmp / "redis", appendonly=False).start()
        stack.callback(redis.stop)
        for target in targets:
            with ExitStack() as inner:
                if target == "reference":
                    server = _reference(inner, redis.url, steps_file)
                else:
                    server = _gateway(inner, redis.url, target == "gateway")
                out[target] = _measure(server, sessions, clients, rate, seconds)
            print(json.dumps({target: out[target]}), flush=True)
    if "gateway" in out and "reference" in out and out["reference"]["deliveries_per_cpu_s"]:
        out["gateway_vs_reference_per_cpu_s"] = round(
            out["gateway"]["deliveries_per_cpu_s"] / out["reference"]["deliveries_per_cpu_s"], 2)
    return out
