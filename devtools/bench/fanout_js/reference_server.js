"use strict";
// 参照服务器：官方 Node.js socket.io + @socket.io/redis-adapter（node-redis 4 客户端）。
// 用法：node reference_server.js --port P --redis redis://127.0.0.1:N
//
// - 监听 127.0.0.1:P（普通 http 服务器；P=0 时由系统分配端口，就绪行里给出实际端口）。
// - transports 保持默认 ["polling", "websocket"]，客户端用 transports: ["websocket"] 直连即可。
// - 命名空间 "/" 与 "/monitor"：每个连接都进入房间 all；不做任何鉴权（auth 里的 token/batch 被忽略）。
// - Redis 适配器使用默认键前缀 "socket.io"，与 feed.js 里的 @socket.io/redis-emitter 默认值一致。
// - 就绪后向 stdout 打印一行 {"ready": true, "port": P, "pid": <pid>}；收到 SIGTERM/SIGINT 后干净退出（退出码 0）。
// - 连接/断开计数在退出时打印到 stderr，便于核对。
const http = require("http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");
const args = require("./args")(process.argv.slice(2));

async function main() {
  const redisUrl = typeof args.redis === "string" ? args.redis : "redis://127.0.0.1:6379";
  const port = Number(args.port === undefined ? 0 : args.port);

  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  // node-redis 的 'error' 事件若无人监听会让进程崩溃；这里只记录，由客户端自行重连
  for (const c of [pubClient, subClient]) c.on("error", (err) => console.error("[redis]", err.message));
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(pubClient, subClient),
    serveClient: false,
    cors: { origin: "*" },
  });

  const stats = { connections: 0, disconnections: 0 };
  for (const name of ["/", "/monitor"]) {
    io.of(name).on("connection", (socket) => {
      stats.connections++;
      socket.join("all");
      socket.on("disconnect", () => { stats.disconnections++; });
    });
  }

  httpServer.on("error", (err) => { console.error("[http]", err.message); process.exit(1); });
  httpServer.listen(port, "127.0.0.1", () => {
    const actual = httpServer.address().port;
    process.stdout.write(JSON.stringify({ ready: true, port: actual, pid: process.pid }) + "\n");
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // 兜底：若关闭卡住，3 秒后强制退出
    setTimeout(() => process.exit(0), 3000).unref();
    try {
      await io.close(); // 断开所有连接、关闭适配器与 http 服务器
    } catch (_) { /* 忽略 */ }
    await Promise.allSettled([pubClient.quit(), subClient.quit()]);
    console.error("[reference_server] " + JSON.stringify(stats));
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => { console.error(err); process.exit(1); });
