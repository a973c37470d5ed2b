// 教师监控页：连接 Socket.IO 的 /monitor 命名空间，按会话显示 monitor.update。
// 路径为 /monitor/sessions/<session_id> 时只订阅该会话（单会话诊断页）。
/* global io */

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

const socket = io("/monitor", { transports: ["websocket"], reconnectionDelayMax: 5000 });
socket.on("connect", () => {
  setConn(true, "已连接");
  if (onlySession) {
    socket.emit("monitor.subscribe", { session_id: onlySession }, (ack) => {
      if (!ack || !ack.ok) setConn(false, `订阅失败：${ack ? ack.error : "无应答"}`);
    });
  }
});
socket.on("disconnect", () => setConn(false, "连接断开，正在重连…"));
socket.on("connect_error", () => setConn(false, "无法连接服务，正在重试…"));
socket.on("monitor.update", onUpdate);
setInterval(tick, 1000);
