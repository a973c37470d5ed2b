// C 个 socket.io-client 连接（websocket），数投递（monitor.batch 里的每条事件各计 1）与 monitor.update 的延迟。
// node clients.js --url http://127.0.0.1:P --namespace /monitor --clients C --seconds D [--token T] [--batch] [--warmup W]
// 结束时输出一行 JSON。
const { io } = require("socket.io-client");
const args = require("./args")(process.argv.slice(2));

const C = Number(args.clients || 20), D = Number(args.seconds || 10), W = Number(args.warmup || 2);
const MAX_SAMPLES = 200000;
const latencies = new Float64Array(MAX_SAMPLES);
let nLat = 0, seenLat = 0, measuring = false, frames = 0;
const byEvent = Object.create(null);
const perClient = new Array(C).fill(0);
const connectErrors = Object.create(null);

function keep(ms) { // 蓄水池抽样：内存有上限
  seenLat++;
  if (nLat < MAX_SAMPLES) latencies[nLat++] = ms;
  else { const j = Math.floor(Math.random() * seenLat); if (j < MAX_SAMPLES) latencies[j] = ms; }
}
function deliver(i, name, data) {
  byEvent[name] = (byEvent[name] || 0) + 1;
  perClient[i]++;
  if (name === "monitor.update" && data && data.timestamp) keep(Date.now() - Date.parse(data.timestamp));
}

const auth = {};
if (args.token) auth.token = args.token;
if (args.batch) auth.batch = true;
const sockets = [];
let connected = 0;
for (let i = 0; i < C; i++) {
  const s = io(args.url + (args.namespace || "/monitor"), { transports: ["websocket"], forceNew: true, auth, reconnection: false });
  s.on("connect", () => { connected++; });
  s.on("connect_error", (err) => { const m = String(err && err.message); connectErrors[m] = (connectErrors[m] || 0) + 1; });
  s.onAny((event, data) => {
    if (!measuring) return;
    if (event === "monitor.batch") {
      frames++;
      for (const [name, payload] of data.events) deliver(i, name, payload);
    } else {
      frames++;
      deliver(i, event, data);
    }
  });
  sockets.push(s);
}

function pct(sorted, q) { return sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 10) / 10 : null; }

async function main() {
  const t0 = Date.now();
  while (connected < C && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 50));
  const connectS = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, W * 1000));
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, D * 1000));
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  const total = perClient.reduce((a, b) => a + b, 0);
  const sorted = Array.from(latencies.subarray(0, nLat)).sort((a, b) => a - b);
  const out = {
    clients: C, connected, connect_s: connectS, connect_errors: connectErrors, seconds: Math.round(elapsed * 100) / 100,
    deliveries: total, deliveries_per_s: Math.round(total / elapsed), by_event: byEvent, frames,
    latency_ms: { p50: pct(sorted, 0.5), p95: pct(sorted, 0.95), p99: pct(sorted, 0.99), max: pct(sorted, 1), n: seenLat },
    per_client_min: Math.min(...perClient), per_client_max: Math.max(...perClient),
  };
  process.stdout.write(JSON.stringify(out) + "\n");
  for (const s of sockets) s.close();
  process.exit(0);
}
main();
