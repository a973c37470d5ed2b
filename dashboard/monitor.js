// 教师监控墙：连接 Socket.IO 的 /monitor 命名空间，每个会话一张卡片（考生、考试、状态、专注度、面部情绪、心率、
// 音量、异常与持续时长），按风险分排序（风险分由工作进程算好，算法在 shared/risk.py），旁边是实时告警列表。
// 收到的更新每个动画帧至多画一次（几百个会话时主线程也不会被逐条重画占满）。
// 点卡片标题或告警打开会话页（session.js）。令牌、续期与断线占位见 connection.js。
import { connectMonitor } from "./connection.js";
import {
  ANOMALY_TEXT, SEVERITY_TEXT, audioText, clock, emotionText, escapeHtml, fmt, heartRate, pct, sessionHref, setAttr, setText, who,
} from "./format.js";

const STALE_MS = 3000; // 超过该时间没有更新的会话标记为“无数据”（推流中断、工作进程接管中）
// 卡片状态：分析中；降级（所属工作进程跟不上，分析帧率降低）；无数据；已结束
const STATE_TEXT = { streaming: "分析中", degraded: "降级", stale: "无数据", ended: "已结束" };
const RESORT_MS = 1000; // 卡片至多每秒重排一次：排序跟得上风险变化，又不会让卡片一直跳
const MAX_ALERTS = 60; // 列表里保留最近的这么多条（更早的在各会话页的异常时间线里）
const grid = document.getElementById("grid");
const empty = document.getElementById("empty");
const summary = document.getElementById("summary");
const alertList = document.getElementById("alerts");
const examFilter = document.getElementById("exam-filter");
const search = document.getElementById("search");
const system = document.getElementById("system");
const totals = Object.fromEntries([...document.querySelectorAll("[data-total]")].map((el) => [el.dataset.total, el]));

const sessions = new Map(); // session_id -> {el, f（各字段的节点）, badgeKey, update, lastAt, active: Map(code -> 告警条目), stale}
const pending = new Map(); // 本帧还没画的最新更新：session_id -> update
const exams = new Set();
// 诊断计数（基准 devtools/bench/wall.py 读它）：收到的 monitor.update、画出的更新、画帧次数、最长一次画帧（毫秒）
const stats = { received: 0, applied: 0, frames: 0, longest_draw_ms: 0 };
window.wallStats = stats;
let frameRequested = false;
let lastSortAt = 0;

function row(key, field, inner = "") {
  return `<div class="row"><span class="k">${key}</span><span class="v" data-field="${field}">${inner}</span></div>`;
}

// 卡片的骨架只建一次，之后只改各字段的文字与属性
const TILE = `
  <h2><a data-field="who"></a><span class="risk" data-field="risk" title="风险分"></span></h2>
  <div class="top">
    <div class="sub"><span class="exam"></span><span class="state" data-field="state"></span></div>
    <img class="preview" data-field="preview" alt="" width="96" height="54" hidden>
  </div>
  ${row("人脸", "face")}
  ${row("专注度", "attention", '<meter min="0" max="100" low="40" high="70" optimum="100" hidden></meter><span></span>')}
  ${row("面部情绪", "emotion")}
  ${row("遮挡", "occlusion")}
  ${row("多人累计", "multi_face_secs")}
  ${row("心率", "hr")}
  ${row("音量", "audio_level", '<meter min="-60" max="0" low="-40" high="-12" optimum="-60" hidden></meter><span></span>')}
  ${row("语音情绪", "audio")}
  <div class="badges"></div>
  <div class="foot">更新 <span data-field="age">刚刚</span> · 延迟 <span data-field="latency"></span> · 丢帧 <span data-field="dropped"></span></div>`;

function createTile(update) {
  const el = document.createElement("article");
  el.className = "card";
  el.dataset.sessionId = update.session_id;
  el.innerHTML = TILE;
  const field = (name) => el.querySelector(`[data-field="${name}"]`);
  const f = Object.fromEntries(
    ["who", "risk", "state", "face", "attention", "emotion", "occlusion", "multi_face_secs", "hr", "audio_level", "audio",
      "age", "latency", "dropped", "preview"].map((name) => [name, field(name)]),
  );
  f.exam = el.querySelector(".exam");
  f.badges = el.querySelector(".badges");
  f.who.href = sessionHref(update.session_id);
  return { el, f, badgeKey: "" };
}

// 电平表：-60 dBFS（静）到 0 dBFS（满幅）；只显示电平，不播放任何音频
function setMeter(cell, value, text) {
  const [meter, label] = cell.children;
  meter.hidden = value === null;
  if (value !== null && Number(meter.value) !== value) meter.value = value;
  setText(label, text);
}

function paint(tile, update) {
  const { el, f } = tile;
  const m = update.metrics;
  const risk = update.risk || { score: 0, level: "none" };
  setAttr(el, "data-risk-level", risk.level);
  el.classList.toggle("alert", update.anomalies.length > 0 || m.face.detected === false);
  setText(f.who, who(update));
  setText(f.risk, fmt(risk.score, 0));
  setAttr(f.risk, "data-level", risk.level);
  setText(f.exam, update.exam_id ? `考试 ${update.exam_id}` : "");
  setText(f.face, m.face.detected === null ? "—" : m.face.detected ? "有人脸" : "无人脸");
  const attention = m.attention.score === null || m.attention.score === undefined ? null : Math.round(m.attention.score * 100);
  setMeter(f.attention, attention, attention === null ? "—" : `${attention}%`);
  setText(f.emotion, emotionText(m.emotion));
  setText(f.occlusion, pct(m.face.occlusion_ratio));
  setText(f.multi_face_secs, fmt(m.face.multi_face_secs, 1, " 秒"));
  setText(f.hr, heartRate(m.ppg));
  const level = m.audio.level_dbfs;
  const hasLevel = level !== null && level !== undefined;
  setMeter(f.audio_level, hasLevel ? Math.max(-60, Math.min(0, level)) : null, audioText(m.audio));
  setText(f.audio, m.audio.dominant || "—");
  setText(f.latency, fmt(update.latency_ms, 0, " ms"));
  setText(f.dropped, String(update.system.dropped_frames));
  // 异常徽标：种类或严重度变了才重建，否则只改持续时长
  const key = update.anomalies.map((a) => `${a.code}:${a.severity}`).join(",");
  if (key !== tile.badgeKey) {
    tile.badgeKey = key;
    f.badges.innerHTML = update.anomalies
      .map((a) => `<span class="badge ${a.severity}" data-code="${a.code}">${ANOMALY_TEXT[a.code] || a.code} <span></span></span>`)
      .join("");
  }
  update.anomalies.forEach((a, i) => setText(f.badges.children[i].lastElementChild, fmt(a.duration_ms / 1000, 0, "s")));
}

// ---- 实时告警：每个新出现的异常一条（时间、考生、异常、严重度、持续时长），点击打开会话页 ----
function createAlert(update, a, now) {
  const el = document.createElement("li");
  el.dataset.sessionId = update.session_id;
  el.dataset.code = a.code;
  el.innerHTML = `<a href="${sessionHref(update.session_id)}"><time>${clock(now - a.duration_ms)}</time>
    <span class="who">${escapeHtml(who(update))}</span>
    <span class="badge ${a.severity}" data-code="${a.code}">${ANOMALY_TEXT[a.code] || a.code}</span>
    <span class="sev"></span><span class="dur"></span></a>`;
  return { el, sev: el.querySelector(".sev"), dur: el.querySelector(".dur"), badge: el.querySelector(".badge") };
}

function paintAlert(item, a, active) {
  setText(item.sev, SEVERITY_TEXT[a.severity] || a.severity);
  setText(item.dur, `${fmt(a.duration_ms / 1000, 0, " 秒")} ${active ? "进行中" : "已结束"}`);
  setAttr(item.badge, "class", `badge ${a.severity}`);
  setAttr(item.el, "data-severity", a.severity);
}

// 新的告警先攒在 freshAlerts，每帧一次放到列表最前；进行中告警的持续时长每秒更新一次（refreshStatus），
// 不随每条更新改写：几百个会话时告警列表的逐条改写与重排曾是最长的主线程任务
const freshAlerts = [];
const activeAlerts = new Set();

function trackAlerts(entry, update, now) {
  const seen = new Set();
  for (const a of update.anomalies) {
    seen.add(a.code);
    let item = entry.active.get(a.code);
    if (!item) {
      item = createAlert(update, a, now);
      entry.active.set(a.code, item);
      activeAlerts.add(item);
      freshAlerts.push(item.el);
      paintAlert(item, a, true);
    } else if (item.last.severity !== a.severity) {
      paintAlert(item, a, true);
    }
    item.last = a;
  }
  for (const [code, item] of entry.active) {
    if (seen.has(code)) continue;
    item.el.classList.add("ended");
    paintAlert(item, item.last, false);
    entry.active.delete(code);
    activeAlerts.delete(item);
  }
}

function flushAlerts() {
  if (!freshAlerts.length) return;
  alertList.prepend(...freshAlerts.reverse());
  freshAlerts.length = 0;
  while (alertList.children.length > MAX_ALERTS) alertList.lastElementChild.remove();
}

// ---- 每个动画帧至多画一次：收到的更新先放进 pending，同一会话只画最新的一条 ----
function newer(update, other) {
  return !other || update.timestamp >= other.timestamp; // ISO-8601 UTC（同一格式）按字符串比较即按时间
}

function onUpdate(update) {
  stats.received += 1;
  // 连接时的回放（最近 10 秒）可能与实时更新交错到达：每个会话只往前走，不让旧的一条把告警“结束”掉
  const shown = sessions.get(update.session_id);
  if (shown && shown.ended) return;
  if (!newer(update, shown && shown.update) || !newer(update, pending.get(update.session_id))) return;
  pending.set(update.session_id, update);
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(drawFrame);
  }
}

// 屏幕外的卡片（content-visibility 跳过了它的内容）不画，只记下“有新数据”，滚动到屏幕里时再画最新的一条：
// 300 个会话时屏幕上只有二十来张卡片，每帧的 DOM 写入因此少一个数量级
function newEntry(update, now) {
  const entry = {
    ...createTile(update), update, name: who(update), lastAt: now, active: new Map(), stale: null, rank: null,
    skipped: false, dirty: false,
  };
  entry.el.addEventListener("contentvisibilityautostatechange", (event) => {
    entry.skipped = event.skipped;
    if (event.skipped) return;
    if (entry.dirty) paint(entry, entry.update);
    entry.dirty = false;
    paintStatus(entry, Date.now());
  });
  return entry;
}

function drawFrame() {
  frameRequested = false;
  const started = performance.now();
  const now = Date.now();
  link.dataArrived();
  stats.frames += 1;
  stats.applied += pending.size;
  let added = false;
  let refilter = false;
  for (const update of pending.values()) {
    let entry = sessions.get(update.session_id);
    if (!entry) {
      entry = newEntry(update, now);
      grid.appendChild(entry.el);
      sessions.set(update.session_id, entry);
      added = true;
      if (previews.has(update.session_id)) {
        showPreview(entry, previews.get(update.session_id));
        previews.delete(update.session_id);
      }
    }
    entry.update = update;
    entry.lastAt = now;
    if (entry.skipped) entry.dirty = true;
    else paint(entry, update);
    markStale(entry, false);
    trackAlerts(entry, update, now);
    if (update.exam_id && !exams.has(update.exam_id)) {
      exams.add(update.exam_id);
      examFilter.add(new Option(update.exam_id, update.exam_id));
    }
    if (filtering() && filterOne(entry)) refilter = true;
  }
  pending.clear();
  flushAlerts();
  if (added || now - lastSortAt >= RESORT_MS) sortTiles(now);
  else if (refilter) place();
  if (added) refreshStatus(now);
  empty.hidden = sessions.size > 0;
  stats.longest_draw_ms = Math.max(stats.longest_draw_ms, performance.now() - started);
}

// 排序用风险分的 10 分档：分数连续变化（衰减）时相近的会话不会每秒互换位置，墙面更稳，重排的卡片也少
const RISK_BAND = 10;
function riskOf(entry) {
  return entry.update.risk ? Math.floor(entry.update.risk.score / RISK_BAND) : 0;
}

// ---- 排序与摆放：卡片大小固定、用 transform 摆到网格里的位置（不移动 DOM 节点）----
// 重排时只改位置变了的卡片的 transform：不触发整个网格的重新排版（300 张卡片时按 DOM 顺序重排要 100 ms 以上）。
// 视觉顺序记在 data-rank（0 为最前）上；DOM 顺序是卡片出现的顺序。
const CARD_MIN_W = 260;
const CARD_H = 320; // 与 monitor.css 的 .grid .card 高度一致
const GAP = 14;
let columns = 0;
let cardWidth = 0;
let ordered = []; // 当前的视觉顺序

function measure() {
  const width = grid.clientWidth;
  const cols = Math.max(1, Math.floor((width + GAP) / (CARD_MIN_W + GAP)));
  const w = Math.floor((width - GAP * (cols - 1)) / cols);
  if (cols === columns && w === cardWidth) return false;
  columns = cols;
  cardWidth = w;
  grid.style.setProperty("--card-w", `${w}px`);
  return true;
}

function place(force = false) {
  if (measure()) force = true;
  let i = 0;
  for (const entry of ordered) {
    if (entry.el.hidden) continue;
    if (force || entry.rank !== i) {
      entry.rank = i;
      entry.el.dataset.rank = String(i);
      const x = (i % columns) * (cardWidth + GAP);
      const y = Math.floor(i / columns) * (CARD_H + GAP);
      entry.el.style.transform = `translate(${x}px, ${y}px)`;
    }
    i += 1;
  }
  grid.style.height = `${Math.ceil(i / columns) * (CARD_H + GAP)}px`;
}

// 风险分（档）高的在前；同档按考生 / 流名
function sortTiles(now) {
  lastSortAt = now;
  ordered = [...sessions.values()].sort((a, b) => riskOf(b) - riskOf(a) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  place();
}
window.addEventListener("resize", () => place(true));

function filtering() {
  return examFilter.value !== "" || search.value.trim() !== "";
}

function filterOne(entry) {
  const exam = examFilter.value;
  const text = search.value.trim().toLowerCase();
  const u = entry.update;
  const hay = `${u.student_id || ""} ${u.stream_name || ""} ${u.session_id}`.toLowerCase();
  const hidden = Boolean((exam && u.exam_id !== exam) || (text && !hay.includes(text)));
  if (entry.el.hidden === hidden) return false;
  entry.el.hidden = hidden;
  entry.rank = null;
  return true;
}

function applyFilters() {
  for (const entry of sessions.values()) filterOne(entry);
  place();
}
examFilter.addEventListener("change", applyFilters);
search.addEventListener("input", applyFilters);

function markStale(entry, stale) {
  if (entry.stale === stale) return;
  entry.stale = stale;
  entry.el.classList.toggle("stale", stale);
}

function isStale(entry, now) {
  return entry.ended || now - entry.lastAt > STALE_MS;
}

function paintStatus(entry, now) {
  const stale = isStale(entry, now);
  const { f } = entry;
  markStale(entry, stale);
  const state = entry.ended ? "ended" : stale ? "stale" : entry.update.system.degraded ? "degraded" : "streaming";
  setText(f.state, STATE_TEXT[state]);
  setAttr(f.state, "data-state", state);
  setText(f.age, now - entry.lastAt < 1500 ? "刚刚" : `${Math.round((now - entry.lastAt) / 1000)} 秒前`);
}

// 头部合计、（屏幕上的）卡片的状态与“多久前更新”：每秒一次（新会话出现时也立即一次）
function refreshStatus(now) {
  let live = 0;
  let degraded = 0;
  let anomalies = 0;
  let dropped = 0;
  let cpu = null;
  let gpu = null;
  const workers = new Set();
  for (const entry of sessions.values()) {
    const stale = isStale(entry, now);
    const u = entry.update;
    if (!entry.skipped) paintStatus(entry, now);
    if (stale) continue;
    live += 1;
    if (u.system.degraded) degraded += 1;
    anomalies += u.anomalies.length;
    dropped += u.system.dropped_frames;
    if (u.system.cpu_util !== null && u.system.cpu_util !== undefined) cpu = Math.max(cpu ?? 0, u.system.cpu_util);
    if (u.system.gpu_util !== null && u.system.gpu_util !== undefined) gpu = Math.max(gpu ?? 0, u.system.gpu_util);
    if (u.system.worker) workers.add(u.system.worker);
  }
  for (const item of activeAlerts) paintAlert(item, item.last, true);
  setText(totals.live, String(live));
  setText(totals.degraded, String(degraded));
  setText(totals.anomalies, String(anomalies));
  setText(summary, `在线 ${live} / 共 ${sessions.size} 路`);
  const gpuText = gpu === null ? "" : ` · GPU 最高 ${pct(gpu)}`;
  setText(system, `工作进程 ${workers.size} 个 · CPU 最高 ${cpu === null ? "—" : pct(cpu)}${gpuText} · 累计丢帧 ${dropped}`);
}

setInterval(() => refreshStatus(Date.now()), 1000);

// ---- 预览小图（monitor.preview，默认马赛克，每路十几秒一张）：只放进卡片，不保存；卡片还没建时先记下 ----
const previews = new Map(); // session_id -> 还没有卡片时收到的最新一张
const PREVIEW_TEXT = { mosaic: "预览（马赛克）", plain: "预览" };
function showPreview(entry, msg) {
  const img = entry.f.preview;
  img.src = msg.image;
  img.title = `${PREVIEW_TEXT[msg.mode] || "预览"} ${clock(Date.parse(msg.timestamp))}`;
  img.alt = PREVIEW_TEXT[msg.mode] || "预览";
  img.dataset.mode = msg.mode;
  img.hidden = false;
}
function onPreview(msg) {
  const entry = sessions.get(msg.session_id);
  if (entry) showPreview(entry, msg);
  else previews.set(msg.session_id, msg);
}

// ---- 会话结束：卡片标为“已结束”（之后不再算在线），告警里它进行中的异常随之结束 ----
function onEnded(msg) {
  const entry = sessions.get(msg.session_id);
  if (!entry) return;
  entry.ended = true;
  trackAlerts(entry, { ...entry.update, anomalies: [] }, Date.now());
  refreshStatus(Date.now());
}

// 只要 monitor.update 与预览小图，并按批接收（每 50 ms 至多一条 monitor.batch）：几百个会话时页面每秒只处理约 20 条消息
const link = connectMonitor({ delivery: { events: ["monitor.update", "monitor.preview"], batch: true } });
link.socket.on("monitor.update", onUpdate); // 连接时声明投递方式之前的事件（例如服务端不支持 batch）
link.socket.on("monitor.preview", onPreview);
link.socket.on("monitor.batch", (batch) => {
  for (const [name, data] of batch.events) {
    if (name === "monitor.update") onUpdate(data);
    else if (name === "monitor.preview") onPreview(data);
  }
});
link.socket.on("session.ended", onEnded);
