// 参照服务器：npm socket.io + @socket.io/redis-adapter（node-redis 4），命名空间 / 与 /monitor，每个连接进入 all 房间，不做鉴权。
// node reference_server.js --port P --redis redis://127.0.0.1:N
const http = require("http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");
const args = require("./args")(process.argv.slice(2));

async function main() {
  const pub = createClient({ url: args.redis });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pub, sub), cors: { origin: "*" } });
  for (const ns of ["/", "/monitor"]) io.of(ns).on("connection", (socket) => socket.join("all"));
  const port = Number(args.port);
  httpServer.listen(port, "127.0.0.1", () => {
    process.stdout.write(JSON.stringify({ ready: true, port, pid: process.pid }) + "\n");
  });
  const stop = () => { io.close(); pub.quit().catch(() => {}); sub.quit().catch(() => {}); process.exit(0); };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
main().catch((err) => { console.error(err); process.exit(1); });
