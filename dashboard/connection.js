// 教师页面到 /monitor 命名空间的连接（监控墙与会话页共用）：监控令牌、续期、被拒绝时的说明、服务连不上时的只读占位。
//
// 访问控制：考试系统为教师申请监控令牌（POST /api/monitor/token），打开 /monitor#token=<令牌>。
// 页面读出令牌后把它从地址栏去掉（# 之后的部分从不发给服务器），令牌只放在内存与本标签页的 sessionStorage
// （同一标签页里打开会话页、刷新页面仍可用；关闭标签页即清除）。过期前 1 分钟经 auth.renew 续期。
//
// 服务连不上时：#offline 显示最后收到数据的时刻与第几次重连，页面照常显示最后的状态（只读）；
// 重连由 Socket.IO 客户端按指数退避进行（1 秒起、每次加倍、至多 5 秒，带随机抖动），回来后不需要刷新页面。
/* global io */
import { clock } from "./format.js";

const TOKEN_KEY = "proctor.monitor_token";
const RENEW_BEFORE_MS = 60_000;
const REFUSAL_TEXT = {
  token_missing: "需要监控令牌：请从考试系统打开监控页",
  token_invalid: "监控令牌无效：请从考试系统重新打开监控页",
  token_expired: "监控令牌已过期：请从考试系统重新打开监控页",
  token_revoked: "监控令牌已被撤销",
  server_unavailable: "服务暂不可用，正在重试…",
};

function takeToken() {
  const fromUrl = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function expiresAtMs(token) {
  try {
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return claims.exp * 1000;
  } catch {
    return null;
  }
}

// 连接 /monitor。delivery：投递方式（见 shared.messages.DeliveryOptions）；onConnect(socket)：每次连上（含重连）；
// 返回的对象有 socket 与 dataArrived()（页面收到数据时调用，占位提示据此写“最后状态”的时刻）。
export function connectMonitor({ delivery = {}, onConnect = () => {} } = {}) {
  const conn = document.getElementById("conn");
  const offline = document.getElementById("offline");
  let token = takeToken();
  let renewTimer = null;
  let lastDataAt = null;
  let attempts = 0;

  function setConn(up, text) {
    conn.textContent = text;
    conn.dataset.state = up ? "up" : "down";
    conn.className = `conn ${up ? "conn-up" : "conn-down"}`;
  }

  function refused(reason) {
    setConn(false, REFUSAL_TEXT[reason] || `无法连接：${reason}`);
    conn.dataset.reason = reason;
  }

  function showOffline() {
    const at = lastDataAt ? `下面是 ${clock(lastDataAt)} 的最后状态（只读）` : "还没有收到过数据";
    offline.textContent = `服务暂时连不上：${at}，正在重连…${attempts ? `（第 ${attempts} 次）` : ""}`;
    offline.hidden = false;
    document.body.classList.add("is-offline");
  }

  function hideOffline() {
    attempts = 0;
    offline.hidden = true;
    document.body.classList.remove("is-offline");
  }

  const socket = io("/monitor", {
    transports: ["websocket"], reconnectionDelayMax: 5000, auth: { token, ...delivery }, autoConnect: false,
  });

  function scheduleRenew() {
    clearTimeout(renewTimer);
    const expires = token ? expiresAtMs(token) : null;
    if (!expires) return;
    renewTimer = setTimeout(renew, Math.max(5_000, expires - Date.now() - RENEW_BEFORE_MS));
  }

  function renew() {
    socket.timeout(10_000).emit("auth.renew", {}, (err, ack) => {
      if (!err && ack && ack.ok) {
        token = ack.token;
        sessionStorage.setItem(TOKEN_KEY, token);
        socket.auth = { token, ...delivery };
        scheduleRenew();
      } else {
        renewTimer = setTimeout(renew, 10_000); // 连接断开或服务忙：稍后再试，直到令牌过期
      }
    });
  }

  socket.io.on("reconnect_attempt", (n) => {
    attempts = n;
    if (!offline.hidden) showOffline();
  });
  socket.on("connect", () => {
    hideOffline();
    setConn(true, "已连接");
    delete conn.dataset.reason;
    scheduleRenew();
    onConnect(socket);
  });
  socket.on("disconnect", (reason) => {
    if (reason !== "io server disconnect") {
      setConn(false, "连接断开，正在重连…");
      showOffline();
    }
  });
  socket.on("connect_error", (err) => {
    const reason = err && err.data ? err.data.reason : null;
    if (reason && reason !== "server_unavailable") {
      refused(reason); // 凭据问题：重试没有用，不再重连
    } else {
      setConn(false, "无法连接服务，正在重试…");
      showOffline();
      if (reason) setTimeout(() => socket.connect(), 3000); // 服务端拒绝后客户端不会自动重连
    }
  });
  socket.on("auth.expired", (msg) => refused(msg && msg.reason ? msg.reason : "token_expired"));

  // 先让调用方注册事件处理，再连接
  queueMicrotask(() => (token ? socket.connect() : refused("token_missing")));
  return {
    socket,
    dataArrived() {
      lastDataAt = Date.now();
    },
    failed(text) {
      setConn(false, text);
    },
  };
}
