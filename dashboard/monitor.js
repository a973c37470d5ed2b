// 教师监控页：连接 Socket.IO 的 /monitor 命名空间，按会话显示 monitor.update。
// 路径为 /monitor/sessions/<session_id> 时只订阅该会话（单会话诊断页）。
//
// 访问控制：考试系统为教师申请监控令牌（POST /api/monitor/token），打开 /monitor#token=<令牌>。
// 页面读出令牌后把它从地址栏去掉（# 之后的部分从不发给服务器），令牌只放在内存与本标签页的 sessionStorage
// （同一标签页里打开单会话页、刷新页面仍可用；关闭标签页即清除）。过期前 1 分钟经 auth.renew 续期。
/* global io */

const TOKEN_KEY = "proctor.monitor_token";
const RENEW_BEFORE_MS = 60_000;
const REFUSAL_TEXT = {
  token_missing: "需要监控令牌：请从考试系统打开监控页",
  token_invalid: "监控令牌无效：请从考试系统重新打开监控页",
  token_expired: "监控令牌已过期：请从考试系统重新打开监控页",
  token_revoked: "监控令牌已被撤销",
  server_unavailable: "服务暂不可用，正在重试…",
};

const STALE_MS = 3000; // 超过该时间没有更新的会话标记为“无数据”
const ANOMALY_TEXT = {
  NO_FACE: "无人脸",
  MULTI_FACE: "多人",
  LOOK_AWAY: "视线偏离",
  OCCLUSION: "遮挡",
  TALKING: "说话",
};

const grid = document.getElementById("grid");
const empty = document.getElementById("empty");
const conn = document.getElementById("conn");
const summary = document.getElementById("summary");
const cards = new Map(); // session_id -> {el, lastAt}

const match = window.location.pathname.match(/^\/monitor\/sessions\/([^/]+)\/?$/);
const onlySession = match ? decodeURIComponent(match[1]) : null;
if (onlySession) {
  document.getElementById("title").textContent = `单会话诊断：${onlySession}`;
  document.title = `会话 ${onlySession}`;
}

function fmt(value, digits = 0, unit = "") {
  if (value === null || value === undefined) return "—";
  return `${Number(value).toFixed(digits)}${unit}`;
}

function row(key, value, field) {
  return `<div class="row"><span class="k">${key}</span><span class="v" data-field="${field}">${value}</span></div>`;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// 电平表：-60 dBFS（静）到 0 dBFS（满幅）；只显示电平，不播放任何音频
function levelMeter(audio) {
  if (audio.level_dbfs === null || audio.level_dbfs === undefined) return "无音轨";
  const level = Math.max(-60, Math.min(0, audio.level_dbfs));
  const talking = audio.talking ? " 说话中" : "";
  return `<meter min="-60" max="0" low="-40" high="-12" optimum="-60" value="${level}"></meter> ${fmt(audio.level_dbfs, 0, " dB")}${talking}`;
}

function render(update) {
  const m = update.metrics;
  const face = m.face.detected === null ? "—" : m.face.detected ? "有人脸" : "无人脸";
  const badges = update.anomalies
    .map((a) => `<span class="badge ${a.severity}" data-code="${a.code}">${ANOMALY_TEXT[a.code] || a.code} ${fmt(a.duration_ms / 1000, 1, "s")}</span>`)
    .join("");
  const id = escapeHtml(update.session_id);
  return `
    <h2><a href="/monitor/sessions/${encodeURIComponent(update.session_id)}">${id}</a></h2>
    ${row("人脸", face, "face")}
    ${row("多人累计", fmt(m.face.multi_face_secs, 1, " 秒"), "multi_face_secs")}
    ${row("遮挡", fmt(m.face.occlusion_ratio === null ? null : m.face.occlusion_ratio * 100, 0, "%"), "occlusion")}
    ${row("专注度", fmt(m.attention.score === null ? null : m.attention.score * 100, 0, "%"), "attention")}
    ${row("心率", fmt(m.ppg.hr_bpm, 0, " bpm") + (m.ppg.hr_bpm != null && m.ppg.source === "client" ? " · 学生端采样" : ""), "hr")}
    ${row("音量", levelMeter(m.audio), "audio_level")}
    ${row("语音情绪", m.audio.dominant ? escapeHtml(m.audio.dominant) : "—", "audio")}
    <div class="badges">${badges}</div>
    <div class="foot">延迟 ${fmt(update.latency_ms, 0, " ms")} · 丢帧 ${update.system.dropped_frames} · 模型 ${update.models.map(escapeHtml).join("/")}</div>`;
}

function onUpdate(update) {
  if (onlySession && update.session_id !== onlySession) return;
  let entry = cards.get(update.session_id);
  if (!entry) {
    const el = document.createElement("article");
    el.className = "card";
    el.dataset.sessionId = update.session_id;
    grid.appendChild(el);
    entry = { el, lastAt: 0 };
    cards.set(update.session_id, entry);
  }
  entry.lastAt = Date.now();
  entry.el.innerHTML = render(update);
  entry.el.classList.toggle("alert", update.anomalies.length > 0 || update.metrics.face.detected === false);
  entry.el.classList.remove("stale");
  empty.hidden = cards.size > 0;
}

function tick() {
  const now = Date.now();
  let live = 0;
  for (const entry of cards.values()) {
    const stale = now - entry.lastAt > STALE_MS;
    entry.el.classList.toggle("stale", stale);
    if (!stale) live += 1;
  }
  summary.textContent = `在线 ${live} / 共 ${cards.size} 路`;
}

function setConn(up, text) {
  conn.textContent = text;
  conn.dataset.state = up ? "up" : "down";
  conn.className = `conn ${up ? "conn-up" : "conn-down"}`;
}

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

let token = takeToken();
let renewTimer = null;

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
      socket.auth = { token, ...DELIVERY };
      scheduleRenew();
    } else {
      renewTimer = setTimeout(renew, 10_000); // 连接断开或服务忙：稍后再试，直到令牌过期
    }
  });
}

function refused(reason) {
  setConn(false, REFUSAL_TEXT[reason] || `无法连接：${reason}`);
  conn.dataset.reason = reason;
}

// 只要 monitor.update，并按批接收（每 50 ms 至多一条 monitor.batch）：几百个会话时页面每秒只处理约 20 条消息
const DELIVERY = { events: ["monitor.update"], batch: true };
const socket = io("/monitor", {
  transports: ["websocket"], reconnectionDelayMax: 5000, auth: { token, ...DELIVERY }, autoConnect: false,
});
socket.on("connect", () => {
  setConn(true, "已连接");
  delete conn.dataset.reason;
  scheduleRenew();
  if (onlySession) {
    socket.emit("monitor.subscribe", { session_id: onlySession }, (ack) => {
      if (!ack || !ack.ok) setConn(false, `订阅失败：${ack ? ack.error : "无应答"}`);
    });
  }
});
socket.on("disconnect", (reason) => {
  if (reason !== "io server disconnect") setConn(false, "连接断开，正在重连…");
});
socket.on("connect_error", (err) => {
  const reason = err && err.data ? err.data.reason : null;
  if (reason && reason !== "server_unavailable") {
    refused(reason); // 凭据问题：重试没有用，不再重连
  } else {
    setConn(false, "无法连接服务，正在重试…");
    if (reason) setTimeout(() => socket.connect(), 3000); // 服务端拒绝后客户端不会自动重连
  }
});
socket.on("auth.expired", (msg) => refused(msg && msg.reason ? msg.reason : "token_expired"));
socket.on("monitor.update", onUpdate); // 连接时声明投递方式之前的事件（例如服务端不支持 batch）
socket.on("monitor.batch", (batch) => {
  for (const [name, update] of batch.events) if (name === "monitor.update") onUpdate(update);
});
setInterval(tick, 1000);
if (token) {
  socket.connect();
} else {
  refused("token_missing");
}
