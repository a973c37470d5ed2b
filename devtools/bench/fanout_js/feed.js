"use strict";
// 参照侧的事件源：通过 @socket.io/redis-emitter 向 Redis 发布 Socket.IO 广播，由 reference_server.js 的 redis 适配器扇出。
// 用法：node feed.js --redis URL --steps FILE --rate 2.5 --seconds T
//
// FILE 为 JSON：{"sessions": [{"emissions": [[事件名, 负载, 命名空间, 房间或房间列表], ...]}, ...]}
//   房间可以是字符串、字符串列表，或缺省/null（= 命名空间内全体广播）。
//
// 调度（无漂移）：会话 i（共 S 个）的第 k 轮计划时刻为 start + (k + i/S) * period，period = 1000/rate 毫秒，
//   即各会话的相位在一个周期内均匀错开；时刻全部由起点推算，不用 setTimeout 链累积误差。
//   某轮若已落后超过一个周期，则跳过该轮（计入 skipped），不做补发，避免突发。
// 每轮发出前，对事件名为 monitor.update 的每条事件复制一份负载并写入 timestamp = 当前时间（ISO 8601，毫秒，UTC），
//   模板对象本身不被修改。
// 结束时（到时或收到 SIGTERM/SIGINT）向 stdout 打印一行 JSON：{"steps_sent", "emissions_sent", "skipped", "seconds", ...} 并退出。
//
// 注意：redis-emitter 的 emit() 只返回 true，不返回 publish 的 Promise；发布失败会表现为未处理的 rejection，
//   这里统一捕获并计入 publish_errors。同一 Redis 连接上的命令由 node-redis 自动流水线化。
const fs = require("fs");
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");
const args = require("./args")(process.argv.slice(2));

let publishErrors = 0;
process.on("unhandledRejection", (err) => {
  publishErrors++;
  if (publishErrors <= 3) console.error("[feed] publish 失败:", err && err.message);
});

// SIGTERM/SIGINT：提前结束调度循环，照常打印汇总后退出（退出码 0）
let stopRequested = false;
let wake = null;
const onStop = () => { stopRequested = true; if (wake) wake(); };
process.on("SIGTERM", onStop);
process.on("SIGINT", onStop);

// 可被停止信号提前唤醒的 sleep
const sleep = (ms) => new Promise((r) => {
  const t = setTimeout(() => { wake = null; r(); }, ms);
  wake = () => { clearTimeout(t); wake = null; r(); };
});

async function main() {
  if (typeof args.steps !== "string") throw new Error("缺少 --steps FILE");
  const redisUrl = typeof args.redis === "string" ? args.redis : "redis://127.0.0.1:6379";
  const rate = Number(args.rate === undefined ? 2.5 : args.rate);
  const seconds = Number(args.seconds === undefined ? 30 : args.seconds);
  if (!(rate > 0) || !(seconds > 0)) throw new Error("--rate 与 --seconds 必须为正数");

  const sessions = JSON.parse(fs.readFileSync(args.steps, "utf8")).sessions || [];
  const client = createClient({ url: redisUrl });
  client.on("error", (err) => console.error("[redis]", err.message));
  await client.connect();
  const emitter = new Emitter(client); // 默认键前缀 "socket.io"

  // 预先为每条事件构造好广播对象（BroadcastOperator 不可变，可复用），热路径只剩复制负载与 emit
  const plans = sessions.map((s) => (s.emissions || []).map((em) => {
    const [event, data, namespace, rooms] = em;
    let op = emitter.of(namespace || "/");
    if (rooms !== undefined && rooms !== null && !(Array.isArray(rooms) && rooms.length === 0)) op = op.to(rooms);
    return { event, data, op, stamp: event === "monitor.update" };
  }));

  const S = plans.length;
  const period = 1000 / rate;
  const durationMs = seconds * 1000;
  let stepsSent = 0, emissionsSent = 0, skipped = 0, maxLagMs = 0;
  const start = performance.now();

  if (S > 0) {
    // 按计划时刻的先后顺序遍历 (k, i)；时刻单调递增，因此首个超出时长的即为终点
    outer: for (let k = 0; ; k++) {
      for (let i = 0; i < S; i++) {
        const dueOffset = (k + i / S) * period;
        if (dueOffset >= durationMs || stopRequested) break outer;
        const lag = performance.now() - (start + dueOffset);
        if (lag < 0) {
          await sleep(-lag);
          if (stopRequested) break outer;
        } else if (lag > period) {
          skipped++; // 落后超过一个周期：跳过本轮，不补发
          continue;
        }
        const lagNow = performance.now() - (start + dueOffset);
        if (lagNow > maxLagMs) maxLagMs = lagNow;
        const now = new Date().toISOString();
        const plan = plans[i];
        for (let j = 0; j < plan.length; j++) {
          const p = plan[j];
          const payload = p.stamp && p.data && typeof p.data === "object" ? { ...p.data, timestamp: now } : p.data;
          p.op.emit(p.event, payload);
        }
        emissionsSent += plan.length;
        stepsSent++;
      }
    }
  }
  const elapsed = (performance.now() - start) / 1000;
  await client.quit(); // 等待排队中的 PUBLISH 全部发出
  process.stdout.write(JSON.stringify({
    steps_sent: stepsSent,
    emissions_sent: emissionsSent,
    skipped,
    seconds: Math.round(elapsed * 1000) / 1000,
    sessions: S,
    rate,
    slots: stepsSent + skipped, // 计划内的总轮数（= 已发 + 跳过）
    emissions_per_s: Math.round(emissionsSent / elapsed),
    max_lag_ms: Math.round(maxLagMs * 10) / 10,
    publish_errors: publishErrors,
    stopped_by_signal: stopRequested,
  }) + "\n");
  process.exit(0);
}

main().catch((err) => { console.error(err); process.exit(1); });
