"use strict";
// 扇出基准的接收端：开 C 个 socket.io-client 连接（仅 websocket），统计投递数与 monitor.update 的端到端延迟。
// 用法：node clients.js --url http://127.0.0.1:P --namespace /monitor --clients C --seconds D
//                      [--token T] [--batch] [--warmup W] [--connect-timeout 20]
//
// - 每个连接：io(url + namespace, {transports: ["websocket"], forceNew: true, auth})，
//   auth = {token: T}（未给 --token 时省略 token）加上 {batch: true}（仅 --batch 时）。不自动重连。
// - 等待全部连上（默认最多 20 秒；connect_error 按错误消息计数），再丢弃前 W 秒（默认 2），然后计量 D 秒。
// - 计数：socket.onAny((event, ...args) => ...) 对每个事件名计 1 次投递；
//   monitor.batch 事件的负载为 {"events": [[name, data], ...]}，其中每一项计作一次 name 的投递，
//   batch 帧本身不算投递，单独计入 batch_frames。frames = 收到的全部 Socket.IO 事件包数（批量帧 + 单条事件）。
// - 延迟：每条 monitor.update（直接到达或在批量内）取 Date.now() - Date.parse(data.timestamp)（毫秒），
//   存入预分配的 Float64Array 蓄水池（最多 200,000 个样本，内存有界），n 为参与抽样的总条数。
// - 结束时向 stdout 打印一行 JSON，断开全部连接并以 0 退出。
//
// 热路径尽量少做事：同一帧内只取一次 Date.now()，按事件名计数用普通对象，不分配临时数组。
// 注意：Date.parse 对不带时区的 ISO 日期时间按本地时区解析；发送端应使用带 Z 或 +00:00 的 UTC 时间戳。
const { io } = require("socket.io-client");
const args = require("./args")(process.argv.slice(2));

const URL_BASE = typeof args.url === "string" ? args.url.replace(/\/+$/, "") : "http://127.0.0.1:8000";
const NAMESPACE = typeof args.namespace === "string" ? args.namespace : "/monitor";
const C = Number(args.clients === undefined ? 20 : args.clients);
const D = Number(args.seconds === undefined ? 10 : args.seconds);
const W = Number(args.warmup === undefined ? 2 : args.warmup);
const CONNECT_TIMEOUT_MS = Number(args["connect-timeout"] === undefined ? 20 : args["connect-timeout"]) * 1000;
const TOKEN = typeof args.token === "string" ? args.token : null;
const BATCH = args.batch === true || args.batch === "true" || args.batch === "1";

const MAX_SAMPLES = 200000;
const latencies = new Float64Array(MAX_SAMPLES);
let nSamples = 0;   // 蓄水池中已有样本数
let nSeen = 0;      // 参与抽样的 monitor.update 总数
let badTimestamps = 0;
let maxLatency = -Infinity; // 真实最大值（蓄水池满后样本里未必包含它）
let measuring = false;
let frames = 0, batchFrames = 0;
const byEvent = Object.create(null);
const perClient = new Float64Array(C);
const connectErrors = Object.create(null);
let connected = 0, failed = 0, disconnectedDuring = 0;

function sample(ms) { // 蓄水池抽样（Algorithm R）
  nSeen++;
  if (ms > maxLatency) maxLatency = ms;
  if (nSamples < MAX_SAMPLES) latencies[nSamples++] = ms;
  else {
    const j = Math.floor(Math.random() * nSeen);
    if (j < MAX_SAMPLES) latencies[j] = ms;
  }
}

function latencyOf(data, now) {
  const ts = data !== null && typeof data === "object" ? data.timestamp : undefined;
  if (typeof ts !== "string") { badTimestamps++; return; }
  const t = Date.parse(ts);
  if (t !== t) { badTimestamps++; return; } // NaN
  sample(now - t);
}

function makeListener(idx) {
  return function onAny(event, data) {
    if (!measuring) return;
    frames++;
    if (event === "monitor.batch") {
      batchFrames++;
      const items = data && data.events;
      if (!items) return;
      const n = items.length;
      perClient[idx] += n;
      let now = 0;
      for (let k = 0; k < n; k++) {
        const item = items[k];
        const name = item[0];
        byEvent[name] = (byEvent[name] || 0) + 1;
        if (name === "monitor.update") {
          if (now === 0) now = Date.now();
          latencyOf(item[1], now);
        }
      }
    } else {
      perClient[idx]++;
      byEvent[event] = (byEvent[event] || 0) + 1;
      if (event === "monitor.update") latencyOf(data, Date.now());
    }
  };
}

const sockets = [];
for (let i = 0; i < C; i++) {
  const auth = {};
  if (TOKEN !== null) auth.token = TOKEN;
  if (BATCH) auth.batch = true;
  const s = io(URL_BASE + NAMESPACE, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    timeout: CONNECT_TIMEOUT_MS,
    auth,
  });
  s.once("connect", () => { connected++; });
  s.on("connect_error", (err) => {
    failed++;
    const msg = String((err && err.message) || err);
    connectErrors[msg] = (connectErrors[msg] || 0) + 1;
  });
  s.on("disconnect", () => { if (measuring) disconnectedDuring++; });
  s.onAny(makeListener(i));
  sockets.push(s);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round1 = (x) => (x === null ? null : Math.round(x * 10) / 10);

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function main() {
  const t0 = Date.now();
  while (connected + failed < C && Date.now() - t0 < CONNECT_TIMEOUT_MS) await sleep(20);
  const connectS = (Date.now() - t0) / 1000;

  if (connected > 0) {
    await sleep(W * 1000);
    measuring = true;
  }
  const start = performance.now();
  if (connected > 0) await sleep(D * 1000);
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;

  let total = 0, minC = Infinity, maxC = 0;
  for (let i = 0; i < C; i++) {
    const v = perClient[i];
    total += v;
    if (v < minC) minC = v;
    if (v > maxC) maxC = v;
  }
  const sorted = latencies.slice(0, nSamples).sort(); // TypedArray 的 sort 按数值排序
  const out = {
    clients: C,
    connected,
    connect_errors: connectErrors,
    connect_s: Math.round(connectS * 1000) / 1000,
    namespace: NAMESPACE,
    batch: BATCH,
    seconds: Math.round(elapsed * 1000) / 1000,
    deliveries: total,
    deliveries_per_s: elapsed > 0 ? Math.round(total / elapsed) : 0,
    by_event: byEvent,
    frames,
    batch_frames: batchFrames,
    latency_ms: {
      p50: round1(quantile(sorted, 0.5)),
      p95: round1(quantile(sorted, 0.95)),
      p99: round1(quantile(sorted, 0.99)),
      max: round1(nSeen ? maxLatency : null),
      n: nSeen,
    },
    bad_timestamps: badTimestamps,
    disconnected_during: disconnectedDuring,
    per_client_min: C > 0 ? minC : 0,
    per_client_max: maxC,
  };
  process.stdout.write(JSON.stringify(out) + "\n");
  for (const s of sockets) s.close();
  // 给关闭帧一点时间发出去，再退出
  setTimeout(() => process.exit(0), 100);
}

main().catch((err) => { console.error(err); process.exit(1); });
