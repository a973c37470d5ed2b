// 参照的事件源：@socket.io/redis-emitter，每个会话每秒 rate 次发出它一次分析的全部事件（每条事件一条 Redis 消息）。
// node feed.js --redis URL --steps FILE --rate 2.5 --seconds T
// FILE：{"sessions": [{"emissions": [[事件名, 负载, 命名空间, 房间或房间列表], ...]}, ...]}（devtools/bench/fanout.py 写出）
const fs = require("fs");
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");
const args = require("./args")(process.argv.slice(2));

async function main() {
  const sessions = JSON.parse(fs.readFileSync(args.steps, "utf8")).sessions;
  const rate = Number(args.rate || 2.5);
  const seconds = Number(args.seconds || 30);
  const client = createClient({ url: args.redis });
  await client.connect();
  const emitter = new Emitter(client);
  const period = 1000 / rate;
  const start = performance.now();
  let sent = 0, emissions = 0, skipped = 0;
  // 会话 i 的第 k 次在 start + (k + i/S) * period；落后超过一个周期的轮次跳过（计数），不补发
  for (let k = 0; ; k++) {
    for (let i = 0; i < sessions.length; i++) {
      const due = start + (k + i / sessions.length) * period;
      if (due - start >= seconds * 1000) {
        process.stdout.write(JSON.stringify({ steps_sent: sent, emissions_sent: emissions, skipped,
          seconds: (performance.now() - start) / 1000 }) + "\n");
        await client.quit();
        return;
      }
      const delay = due - performance.now();
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      else if (delay < -period) { skipped++; continue; }
      const now = new Date().toISOString();
      for (const [event, data, namespace, rooms] of sessions[i].emissions) {
        const payload = event === "monitor.update" ? { ...data, timestamp: now } : data;
        emitter.of(namespace).to(rooms).emit(event, payload);
        emissions++;
      }
      sent++;
    }
  }
}
main().catch((err) => { console.error(err); process.exit(1); });
