"""教师墙在浏览器里跟不跟得上：S 个合成会话（默认 300）每秒 2.5 次分析，经 Redis 与真实网关推给 Chromium 里的 /monitor。

事件由 ``fanout_feed``（工作进程自己的组装与发送代码）发出，数值随时间变化、每 10 秒换一种异常，所以卡片要重画、重排。
在这台 2 核机器上页面与服务端抢 CPU（网关转发 750 条/秒、发送端、Redis 一起约占满一个核），而学校里教师的浏览器
与服务器不在同一台机器上：网关与发送端以 nice 19 运行（``SERVER_NICE``；Redis 的开销小，照常），量到的是页面自己的开销。

在页面里量：每秒画出的更新数（``window.wallStats``，每个动画帧至多画一次、同一会话只画最新的）、最长的主线程任务
（PerformanceObserver ``longtask``：只报告 50 ms 以上的任务，没有时为 0）、相邻两个动画帧的最大间隔、最长一次画帧。

``python -m devtools.bench wall --sessions 300 --seconds 60``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from devtools.stack.servers import CHROMIUM_ARGS, require_binary
from shared.keys import RedisKeys

from .local import local_stack

SERVER_NICE = 19

# 页面加载前注入：记录长任务与动画帧间隔（不改页面本身的行为）
PROBE = """
window.__probe = {longest_task_ms: 0, long_tasks: 0, max_frame_gap_ms: 0};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    window.__probe.long_tasks += 1;
    window.__probe.longest_task_ms = Math.max(window.__probe.longest_task_ms, e.duration);
  }
}).observe({type: "longtask", buffered: true});
// 最长的动画帧由什么组成（Long Animation Frames API）：脚本（调用者与时长）与样式、布局
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (!window.__probe.measuring || (window.__probe.worst_frame && window.__probe.worst_frame.duration >= e.duration)) continue;
    window.__probe.worst_frame = {
      duration: Math.round(e.duration),
      style_and_layout_ms: Math.round(e.startTime + e.duration - e.styleAndLayoutStart),
      scripts: e.scripts.map((x) => ({invoker: x.invoker, duration: Math.round(x.duration)})),
    };
  }
}).observe({type: "long-animation-frame", buffered: true});
(function loop(prev) {
  requestAnimationFrame((t) => {
    if (prev !== null && window.__probe.measuring) {
      window.__probe.max_frame_gap_ms = Math.max(window.__probe.max_frame_gap_ms, t - prev);
    }
    loop(t);
  });
})(null);
"""


def bench_wall(sessions: int, rate: float, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    with local_stack(0) as stack, sync_playwright() as pw:
        os.setpriority(os.PRIO_PROCESS, stack.gateway.pid, SERVER_NICE)
        browser = pw.chromium.launch(executable_path=require_binary("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.add_init_script(PROBE)
        page.goto(f"{stack.base}/monitor#token={stack.monitor_token()}")
        page.wait_for_selector("#conn[data-state=up]", timeout=30_000)
        channel = RedisKeys(stack.env.get("KEY_PREFIX", "proctor:")).socketio_channel
        feed = subprocess.Popen(
            [sys.executable, "-m", "devtools.bench.fanout_feed", "--redis", stack.env["REDIS_URL"], "--channel", channel,
             "--sessions", str(sessions), "--rate", str(rate), "--seconds", str(seconds + 10)],
            env=stack.env, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(SERVER_NICE),
        )  # fmt: skip
        try:
            time.sleep(8)  # 全部会话的卡片出现、页面稳定之后再量
            page.evaluate("window.__probe = {...window.__probe, longest_task_ms: 0, long_tasks: 0, max_frame_gap_ms: 0,"
                          " measuring: true}; window.wallStats.longest_draw_ms = 0")  # fmt: skip
            before, t0 = page.evaluate("({...window.wallStats})"), time.monotonic()
            time.sleep(seconds)
            after, t1 = page.evaluate("({...window.wallStats})"), time.monotonic()
            probe = page.evaluate("({...window.__probe})")
            tiles = page.locator("#grid article").count()
        finally:
            feed.wait(timeout=seconds + 30)
            browser.close()
        fed = json.loads(feed.stdout.read() or "{}") if feed.stdout else {}
    elapsed = t1 - t0
    return {
        "benchmark": "wall",
        "sessions": sessions,
        "updates_per_s_sent": round(sessions * rate, 1),
        "seconds": round(elapsed, 1),
        "tiles": tiles,
        "server_nice": SERVER_NICE,
        "updates_received_per_s": round((after["received"] - before["received"]) / elapsed, 1),
        "updates_applied_per_s": round((after["applied"] - before["applied"]) / elapsed, 1),
        "frames_drawn_per_s": round((after["frames"] - before["frames"]) / elapsed, 1),
        "longest_task_ms": round(probe["longest_task_ms"], 1),
        "long_tasks_over_50ms": probe["long_tasks"],
        "max_frame_gap_ms": round(probe["max_frame_gap_ms"], 1),
        "longest_draw_ms": round(after["longest_draw_ms"], 1),
        "worst_animation_frame": probe.get("worst_frame"),
        "feed": fed,
    }
