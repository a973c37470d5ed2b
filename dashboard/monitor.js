// 教师监控墙：连接 Socket.IO 的 /monitor 命名空间，每个会话一张卡片（考生、考试、状态、专注度、面部情绪、心率、
// 音量、异常与持续时长），按风险分排序（风险分由工作进程算好，算法在 shared/risk.py），旁边是实时告警列表。
// 收到的更新每个动画帧至多画一次（几百个会话时主线程也不会被逐条重画占满）。
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
const RESORT_MS = 1000; // 卡片至多每秒重排一次：排序跟得上风险变化，又不会让卡片一直跳
const MAX_ALERTS = 200;
const ANOMALY_TEXT = {
  NO_FACE: "无人脸",
  MULTI_FACE: "多人",
  LOOK_AWAY: "视线偏离",
  OCCLUSION: "遮挡",
  TALKING: "说话",
};
const SEVERITY_TEXT = { low: "轻", medium: "中", high: "重" };
const EMOTION_TEXT = {
  angry: "生气", disgust: "厌恶", fear: "害怕", happy: "高兴", sad: "难过", surprise: "惊讶", neutral: "平静",
};

const grid = document.getElementById("grid");
const empty = document.getElementById("empty");
const conn = document.getElementById("conn");
const summary = document.getElementById("summary");
const alertList = document.getElementById("alerts");
const examFilter = document.getElementById("exam-filter");
const search = document.getElementById("search");
const system = document.getElementById("system");
const totals = Object.fromEntries([...document.querySelectorAll("[data-total]")].map((el) => [el.dataset.total, el]));

const sessions = new Map(); // session_id -> {el, update, lastAt, active: Map(code -> 告警条目)}
const pending = new Map(); // 本帧还没画的最新更新：session_id -> update
const exams = new Set();
// 诊断计数（基准 devtools/bench/wall.py 读它）：收到的 monitor.update、画出的更新、画帧次数、最长一次画帧（毫秒）
const stats = { received: 0, applied: 0, frames: 0, longest_draw_ms: 0 };
window.wallStats = stats;
let frameRequested = false;
let lastSortAt = 0;

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

function pct(ratio) {
  return ratio === null || ratio === undefined ? "—" : `${Math.round(ratio * 100)}%`;
}

function row(key, value, field) {
  return `<div class="row"><span class="k">${key}</span><span class="v" data-field="${field}">${value}</span></div>`;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function who(update) {
  return update.student_id ? `考生 ${update.student_id}` : update.stream_name || update.session_id;
}

function sessionHref(id) {
  return `/monitor/sessions/${encodeURIComponent(id)}`;
}

// 电平表：-60 dBFS（静）到 0 dBFS（满幅）；只显示电平，不播放任何音频
function levelMeter(audio) {
  if (audio.level_dbfs === null || audio.level_dbfs === undefined) return "无音轨";
  const level = Math.max(-60, Math.min(0, audio.level_dbfs));
  const talking = audio.talking ? " 说话中" : "";
  return `<meter min="-60" max="0" low="-40" high="-12" optimum="-60" value="${level}"></meter> ${fmt(audio.level_dbfs, 0, " dB")}${talking}`;
}

function attentionGauge(attention) {
  if (attention.score === null || attention.score === undefined) return "—";
  const value = Math.round(attention.score * 100);
  return `<meter min="0" max="100" low="40" high="70" optimum="100" value="${value}"></meter> ${value}%`;
}

function emotionText(emotion) {
  if (!emotion || !emotion.dominant) return "—";
  return `${EMOTION_TEXT[emotion.dominant] || escapeHtml(emotion.dominant)} ${pct(emotion.confidence)}`;
}

function heartRate(ppg) {
  if (ppg.hr_bpm === null || ppg.hr_bpm === undefined) return "—";
  const source = ppg.source === "client" ? "学生端采样" : "视频";
  return `${fmt(ppg.hr_bpm, 0, " bpm")} · 质量 ${pct(ppg.signal_quality)} · ${source}`;
}

function render(update) {
  const m = update.metrics;
  const face = m.face.detected === null ? "—" : m.face.detected ? "有人脸" : "无人脸";
  const badges = update.anomalies
    .map((a) => `<span class="badge ${a.severity}" data-code="${a.code}">${ANOMALY_TEXT[a.code] || a.code} ${fmt(a.duration_ms / 1000, 0, "s")}</span>`)
    .join("");
  const risk = update.risk || { score: 0, level: "none" };
  const exam = update.exam_id ? `<span class="exam">考试 ${escapeHtml(update.exam_id)}</span>` : "";
  return `
    <h2><a href="${sessionHref(update.session_id)}" data-field="who">${escapeHtml(who(update))}</a>
      <span class="risk" data-field="risk" data-level="${risk.level}" title="风险分">${fmt(risk.score, 0)}</span></h2>
    <div class="sub">${exam}<span class="state" data-field="state"></span></div>
    ${row("人脸", face, "face")}
    ${row("专注度", attentionGauge(m.attention), "attention")}
    ${row("面部情绪", emotionText(m.emotion), "emotion")}
    ${row("遮挡", pct(m.face.occlusion_ratio), "occlusion")}
    ${row("多人累计", fmt(m.face.multi_face_secs, 1, " 秒"), "multi_face_secs")}
    ${row("心率", heartRate(m.ppg), "hr")}
    ${row("音量", levelMeter(m.audio), "audio_level")}
    ${row("语音情绪", m.audio.dominant ? escapeHtml(m.audio.dominant) : "—", "audio")}
    <div class="badges">${badges}</div>
    <div class="foot">更新 <span data-field="age">刚刚</span> · 延迟 ${fmt(update.latency_ms, 0, " ms")} · 丢帧 ${update.system.dropped_frames}</div>`;
}

// ---- 实时告警：每个新出现的异常一条（时间、考生、异常、严重度、持续时长），点击打开会话页 ----
function clock(ms) {
  return new Date(ms).toLocaleTimeString("zh-CN", { hour12: false });
}

function alertHtml(item) {
  const state = item.active ? "进行中" : "已结束";
  return `<a href="${sessionHref(item.sessionId)}"><time>${clock(item.at)}</time>
    <span class="who">${escapeHtml(item.who)}</span>
    <span class="badge ${item.severity}" data-code="${item.code}">${ANOMALY_TEXT[item.code] || item.code}</span>
    <span class="sev">${SEVERITY_TEXT[item.severity] || item.severity}</span>
    <span class="dur">${fmt(item.durationMs / 1000, 0, " 秒")} ${state}</span></a>`;
}

function trackAlerts(entry, update) {
  const now = Date.now();
  const seen = new Set();
  for (const a of update.anomalies) {
    seen.add(a.code);
    let item = entry.active.get(a.code);
    if (!item) {
      const el = document.createElement("li");
      el.dataset.sessionId = update.session_id;
      el.dataset.code = a.code;
      item = { el, sessionId: update.session_id, code: a.code, at: now - a.duration_ms, active: true };
      entry.active.set(a.code, item);
      alertList.prepend(el);
      while (alertList.children.length > MAX_ALERTS) alertList.lastElementChild.remove();
    }
    Object.assign(item, { who: who(update), severity: a.severity, durationMs: a.duration_ms });
    item.el.dataset.severity = a.severity;
    item.el.innerHTML = alertHtml(item);
  }
  for (const [code, item] of entry.active) {
    if (seen.has(code)) continue;
    item.active = false;
    item.el.classList.add("ended");
    item.el.innerHTML = alertHtml(item);
    entry.active.delete(code);
  }
}

// ---- 每个动画帧至多画一次：收到的更新先放进 pending，同一会话只画最新的一条 ----
function newer(update, other) {
  return !other || update.timestamp >= other.timestamp; // ISO-8601 UTC（同一格式）按字符串比较即按时间
}

function onUpdate(update) {
  stats.received += 1;
  if (onlySession && update.session_id !== onlySession) return;
  // 连接时的回放（最近 10 秒）可能与实时更新交错到达：每个会话只往前走，不让旧的一条把告警“结束”掉
  const shown = sessions.get(update.session_id);
  if (!newer(update, shown && shown.update) || !newer(update, pending.get(update.session_id))) return;
  pending.set(update.session_id, update);
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(drawFrame);
  }
}

function drawFrame() {
  frameRequested = false;
  const started = performance.now();
  const now = Date.now();
  lastDataAt = now;
  stats.frames += 1;
  stats.applied += pending.size;
  let added = false;
  for (const update of pending.values()) {
    let entry = sessions.get(update.session_id);
    if (!entry) {
      const el = document.createElement("article");
      el.className = "card";
      el.dataset.sessionId = update.session_id;
      grid.appendChild(el);
      entry = { el, update, lastAt: now, active: new Map() };
      sessions.set(update.session_id, entry);
      added = true;
    }
    entry.update = update;
    entry.lastAt = now;
    entry.el.innerHTML = render(update);
    entry.el.dataset.riskLevel = (update.risk && update.risk.level) || "none";
    entry.el.classList.toggle("alert", update.anomalies.length > 0 || update.metrics.face.detected === false);
    entry.el.classList.remove("stale");
    trackAlerts(entry, update);
    if (update.exam_id && !exams.has(update.exam_id)) {
      exams.add(update.exam_id);
      examFilter.add(new Option(update.exam_id, update.exam_id));
    }
    filterOne(entry);
  }
  pending.clear();
  if (added || now - lastSortAt >= RESORT_MS) sortTiles(now);
  empty.hidden = sessions.size > 0;
  refreshStatus(now);
  stats.longest_draw_ms = Math.max(stats.longest_draw_ms, performance.now() - started);
}

function riskOf(entry) {
  return entry.update.risk ? entry.update.risk.score : 0;
}

// 风险分高的在前；同分按考生 / 流名
function sortTiles(now) {
  lastSortAt = now;
  const ordered = [...sessions.values()].sort((a, b) => riskOf(b) - riskOf(a) || who(a.update).localeCompare(who(b.update)));
  const current = grid.children;
  if (ordered.every((entry, i) => current[i] === entry.el)) return;
  grid.append(...ordered.map((entry) => entry.el));
}

function filterOne(entry) {
  const exam = examFilter.value;
  const text = search.value.trim().toLowerCase();
  const u = entry.update;
  const hay = `${u.student_id || ""} ${u.stream_name || ""} ${u.session_id}`.toLowerCase();
  entry.el.hidden = (exam && u.exam_id !== exam) || (text && !hay.includes(text));
}

function applyFilters() {
  for (const entry of sessions.values()) filterOne(entry);
}
examFilter.addEventListener("change", applyFilters);
search.addEventListener("input", applyFilters);

// 头部合计、卡片的状态与“多久前更新”：每秒一次，以及每次画帧之后
function refreshStatus(now) {
  let live = 0;
  let degraded = 0;
  let anomalies = 0;
  let dropped = 0;
  let cpu = null;
  for (const entry of sessions.values()) {
    const stale = now - entry.lastAt > STALE_MS;
    const u = entry.update;
    entry.el.classList.toggle("stale", stale);
    const state = entry.el.querySelector('[data-field="state"]');
    const age = entry.el.querySelector('[data-field="age"]');
    const text = stale ? "无数据" : u.system.degraded ? "降级" : "分析中";
    if (state && state.textContent !== text) {
      state.textContent = text;
      state.dataset.state = stale ? "stale" : u.system.degraded ? "degraded" : "streaming";
    }
    if (age) age.textContent = now - entry.lastAt < 1500 ? "刚刚" : `${Math.round((now - entry.lastAt) / 1000)} 秒前`;
    if (stale) continue;
    live += 1;
    if (u.system.degraded) degraded += 1;
    anomalies += u.anomalies.length;
    dropped += u.system.dropped_frames;
    if (u.system.cpu_util !== null && u.system.cpu_util !== undefined) cpu = Math.max(cpu ?? 0, u.system.cpu_util);
  }
  totals.live.textContent = live;
  totals.degraded.textContent = degraded;
  totals.anomalies.textContent = anomalies;
  summary.textContent = `在线 ${live} / 共 ${sessions.size} 路`;
  system.textContent = `工作进程 CPU 最高 ${cpu === null ? "—" : pct(cpu)} · 累计丢帧 ${dropped}`;
}

setInterval(() => refreshStatus(Date.now()), 1000);

// ---- 服务连不上时：只读的占位提示（最后收到数据的时刻、第几次重连），页面照常显示最后的状态 ----
// 重连由 Socket.IO 客户端按指数退避进行（1 秒起、每次加倍、至多 5 秒，带随机抖动），回来后不需要刷新页面
const offline = document.getElementById("offline");
let lastDataAt = null;
let attempts = 0;

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
socket.io.on("reconnect_attempt", (n) => {
  attempts = n;
  if (!offline.hidden) showOffline();
});
socket.on("connect", () => {
  hideOffline();
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
socket.on("monitor.update", onUpdate); // 连接时声明投递方式之前的事件（例如服务端不支持 batch）
socket.on("monitor.batch", (batch) => {
  for (const [name, update] of batch.events) if (name === "monitor.update") onUpdate(update);
});
if (token) {
  socket.connect();
} else {
  refused("token_missing");
}
