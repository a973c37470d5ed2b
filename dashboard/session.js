// 会话页 /monitor/sessions/<session_id>：一个考生的整场情况。
//
// - 打开时经 monitor.timeline 取整场的数据（时间序列来自服务端，不只是页面打开以后看到的）：专注度与风险分、
//   心率与信号质量、面部情绪、延迟与分析帧率四张图（uPlot），之后每条 monitor.update 追加一个点；
// - 异常时间线与已结束的事件段，每段可标“已复核”并写备注（monitor.review，保存在服务端；别的教师的页面
//   经 monitor.review 事件立即看到）；
// - 连接诊断（重连、丢帧、降级次数、状态变化）；会话结束（session.ended）后显示定稿的报告。
/* global uPlot */
import { connectMonitor } from "./connection.js";
import {
  ANOMALY_TEXT, EMOTION_TEXT, SEVERITY_TEXT, audioText, clock, emotionText, escapeHtml, fmt, heartRate, pct, setAttr, setText, who,
} from "./format.js";

const sessionId = decodeURIComponent(window.location.pathname.split("/").pop());
const EMOTIONS = Object.keys(EMOTION_TEXT);
const EMOTION_COLOUR = {
  angry: "#b91c1c", disgust: "#65a30d", fear: "#7c3aed", happy: "#f59e0b", sad: "#2563eb", surprise: "#db2777",
  neutral: "#64748b",
};
const EPISODE_RELOAD_MS = 3000; // 异常结束后多久重新取事件段（工作进程每 2 秒写一次汇总）

const $ = (id) => document.getElementById(id);
const nowField = Object.fromEntries([...document.querySelectorAll("[data-now]")].map((el) => [el.dataset.now, el]));

// 图表的数据：x 为 Unix 秒；每列与 shared.api.HISTORY_FIELDS 对应
const cols = { t: [], attention: [], risk: [], hr: [], quality: [], latency: [], fps: [], emotion: {} };
for (const e of EMOTIONS) cols.emotion[e] = [];
let charts = null;
let chartsDirty = false;
let status = null; // 会话状态（CREATED … ENDED）
let report = null;
let reviews = new Map(); // episode_id -> review
let active = new Map(); // 进行中的异常：code -> {severity, startMs}
let lastUpdateTs = "";
let reloadTimer = null;
// 诊断计数（测试读它）：取过几次整场数据、图上的点数与第一个点的时刻（毫秒）、实时追加的点数
const stats = { timelines: 0, points: 0, first_point_ms: null, live_points: 0 };
window.sessionStats = stats;

function chart(el, series, axes, scales) {
  const width = Math.max(320, el.clientWidth || 520);
  return new uPlot({
    width, height: 180, series: [{ label: "时间", value: (u, v) => (v == null ? "—" : clock(v * 1000)) }, ...series], axes: [{}, ...axes], scales: { x: { time: true }, ...scales },
    legend: { live: true }, cursor: { drag: { x: false, y: false } },
  }, [[]], el);
}

function createCharts() {
  const pctAxis = { scale: "%", values: (u, v) => v.map((x) => `${x}%`) };
  return {
    attention: chart($("chart-attention"), [
      { label: "专注度", scale: "%", stroke: "#2563eb", width: 2, value: (u, v) => fmt(v, 0, "%") },
      { label: "风险分", scale: "risk", stroke: "#b3261e", width: 1.5 },
    ], [pctAxis, { scale: "risk", side: 1, grid: { show: false } }], { "%": { range: [0, 100] }, risk: { range: [0, 100] } }),
    hr: chart($("chart-hr"), [
      { label: "心率", scale: "bpm", stroke: "#dc2626", width: 2, value: (u, v) => fmt(v, 0, " bpm") },
      { label: "信号质量", scale: "%", stroke: "#94a3b8", width: 1, value: (u, v) => fmt(v, 0, "%") },
    ], [{ scale: "bpm" }, { ...pctAxis, side: 1, grid: { show: false } }], { "%": { range: [0, 100] } }),
    emotion: chart($("chart-emotion"), EMOTIONS.map((e) => ({
      label: EMOTION_TEXT[e], scale: "%", stroke: EMOTION_COLOUR[e], width: 3, value: (u, v) => fmt(v, 0, "%"),
    })), [pctAxis], { "%": { range: [0, 100] } }),
    diag: chart($("chart-diag"), [
      { label: "延迟", scale: "ms", stroke: "#0f766e", width: 1.5, value: (u, v) => fmt(v, 0, " ms") },
      { label: "分析帧率", scale: "fps", stroke: "#a16207", width: 1.5, value: (u, v) => fmt(v, 1) },
    ], [{ scale: "ms" }, { scale: "fps", side: 1, grid: { show: false } }], {}),
  };
}

function drawCharts() {
  chartsDirty = false;
  if (!charts) charts = createCharts();
  charts.attention.setData([cols.t, cols.attention, cols.risk]);
  charts.hr.setData([cols.t, cols.hr, cols.quality]);
  charts.emotion.setData([cols.t, ...EMOTIONS.map((e) => cols.emotion[e])]);
  charts.diag.setData([cols.t, cols.latency, cols.fps]);
  stats.points = cols.t.length;
  stats.first_point_ms = cols.t.length ? cols.t[0] * 1000 : null;
}

function requestDraw() {
  if (chartsDirty) return;
  chartsDirty = true;
  requestAnimationFrame(() => {
    drawCharts();
    drawTimeline();
  });
}

function scaled(v, k) {
  return v === null || v === undefined ? null : v * k;
}

// 一个点：t 为毫秒；emotion 只在主导情绪那一列有值（其余为空，图上是按情绪着色的线段）
function addPoint(tMs, attention, risk, hr, quality, emotion, confidence, latency, fps) {
  cols.t.push(tMs / 1000);
  cols.attention.push(scaled(attention, 100));
  cols.risk.push(risk ?? null);
  cols.hr.push(hr ?? null);
  cols.quality.push(scaled(quality, 100));
  cols.latency.push(latency ?? null);
  cols.fps.push(fps ?? null);
  for (const e of EMOTIONS) cols.emotion[e].push(e === emotion ? scaled(confidence ?? 1, 100) : null);
}

function loadHistory(h) {
  for (const key of ["t", "attention", "risk", "hr", "quality", "latency", "fps"]) cols[key].length = 0;
  for (const e of EMOTIONS) cols.emotion[e].length = 0;
  h.t_ms.forEach((t, i) => addPoint(t, h.attention[i], h.risk[i], h.hr_bpm[i], h.hr_quality[i], h.emotion[i],
    h.emotion_confidence[i], h.latency_ms[i], h.analysis_fps[i]));
}

// ---- 实时：当前值、进行中的异常、图表追加 ----
function onUpdate(update) {
  if (update.session_id !== sessionId || update.timestamp <= lastUpdateTs) return;
  lastUpdateTs = update.timestamp;
  link.dataArrived();
  const m = update.metrics;
  setText(nowField.attention, m.attention.score == null ? "—" : pct(m.attention.score));
  setText(nowField.emotion, emotionText(m.emotion));
  setText(nowField.hr, heartRate(m.ppg));
  setText(nowField.audio, audioText(m.audio));
  setText(nowField.risk, update.risk ? fmt(update.risk.score, 0) : "—");
  setText(nowField.latency, fmt(update.latency_ms, 0, " ms"));
  setText(nowField.fps, fmt(update.system.analysis_fps, 1));
  setText(nowField.dropped, String(update.system.dropped_frames));
  if (status !== "ENDED") setState(update.system.degraded ? "DEGRADED" : "STREAMING");

  const t = Date.parse(update.timestamp);
  const now = new Map(update.anomalies.map((a) => [a.code, { severity: a.severity, startMs: t - a.duration_ms }]));
  const ended = [...active.keys()].some((code) => !now.has(code));
  active = now;
  $("now-anomalies").innerHTML = update.anomalies.map((a) =>
    `<span class="badge ${a.severity}" data-code="${a.code}">${ANOMALY_TEXT[a.code] || a.code} ${fmt(a.duration_ms / 1000, 0, "s")}</span>`).join("");
  if (ended) scheduleReload(); // 结束的异常过几秒出现在事件段里

  if (update.replay) return; // 回放的快照已在服务端的时间序列里
  addPoint(t, m.attention.score, update.risk ? update.risk.score : null, m.ppg.hr_bpm, m.ppg.signal_quality,
    m.emotion.dominant, m.emotion.confidence, update.latency_ms, update.system.analysis_fps);
  stats.live_points += 1;
  requestDraw();
}

const STATE_TEXT = { CREATED: "已创建", ACTIVE: "等待视频", STREAMING: "分析中", DEGRADED: "降级 / 断流", ENDED: "已结束" };

function setState(state) {
  status = state;
  setText($("state"), STATE_TEXT[state] || state);
  setAttr($("state"), "data-state", state);
}

// ---- 异常时间线与事件段（复核标记） ----
function span() {
  const start = report && report.started_at ? Date.parse(report.started_at) : cols.t.length ? cols.t[0] * 1000 : Date.now();
  const end = report && report.ended_at ? Date.parse(report.ended_at) : Date.now();
  return [start, Math.max(end, start + 1000)];
}

// 每段一个色块；位置用 style 属性写（页面的 CSP 不允许 HTML 里的内联样式）
function drawTimeline() {
  const [start, end] = span();
  const bar = (from, to, severity, code, title) => {
    const el = document.createElement("span");
    el.className = severity;
    el.dataset.code = code;
    el.title = title;
    el.style.left = `${(100 * (from - start)) / (end - start)}%`;
    el.style.width = `${(100 * Math.max(0, to - from)) / (end - start)}%`;
    return el;
  };
  const done = (report ? report.anomalies : []).map((ep) => bar(Date.parse(ep.start), Date.parse(ep.end), ep.peak_severity,
    ep.code, `${ANOMALY_TEXT[ep.code] || ep.code} ${clock(Date.parse(ep.start))}，${fmt(ep.duration_s, 1, " 秒")}`));
  const live = [...active].map(([code, a]) => {
    const el = bar(a.startMs, Date.now(), a.severity, code, `${ANOMALY_TEXT[code] || code} 进行中`);
    el.classList.add("active");
    return el;
  });
  $("timeline").replaceChildren(...done, ...live);
}

function reviewCell(ep) {
  const r = reviews.get(ep.episode_id);
  return `<td><input type="checkbox" class="reviewed" ${r && r.reviewed ? "checked" : ""} aria-label="已复核"></td>
    <td><input type="text" class="note" maxlength="500" value="${escapeHtml(r ? r.note : "")}" placeholder="备注"></td>
    <td><button type="button" class="save">保存</button></td>
    <td class="by">${r ? `${escapeHtml(r.teacher)} · ${clock(Date.parse(r.at))}` : ""}</td>`;
}

function drawEpisodes() {
  const episodes = report ? report.anomalies : [];
  $("no-episodes").hidden = episodes.length > 0;
  $("episodes").innerHTML = episodes.map((ep) => {
    const r = reviews.get(ep.episode_id);
    return `<tr data-episode-id="${escapeHtml(ep.episode_id)}" data-code="${ep.code}" class="${r && r.reviewed ? "reviewed" : ""}">
      <td>${clock(Date.parse(ep.start))}</td><td><span class="badge ${ep.peak_severity}">${ANOMALY_TEXT[ep.code] || ep.code}</span></td>
      <td>${SEVERITY_TEXT[ep.peak_severity] || ep.peak_severity}</td><td>${fmt(ep.duration_s, 1, " 秒")}</td>${reviewCell(ep)}</tr>`;
  }).join("");
}

function showReview(review) {
  reviews.set(review.episode_id, review);
  const row = $("episodes").querySelector(`tr[data-episode-id="${CSS.escape(review.episode_id)}"]`);
  if (!row) return;
  row.classList.toggle("reviewed", review.reviewed);
  row.querySelector(".reviewed").checked = review.reviewed;
  if (document.activeElement !== row.querySelector(".note")) row.querySelector(".note").value = review.note;
  row.querySelector(".by").textContent = `${review.teacher} · ${clock(Date.parse(review.at))}`;
}

$("episodes").addEventListener("click", (event) => {
  if (!event.target.classList.contains("save")) return;
  const row = event.target.closest("tr");
  const button = event.target;
  button.disabled = true;
  const body = {
    session_id: sessionId, episode_id: row.dataset.episodeId,
    reviewed: row.querySelector(".reviewed").checked, note: row.querySelector(".note").value,
  };
  link.socket.timeout(10_000).emit("monitor.review", body, (err, ack) => {
    button.disabled = false;
    if (err || !ack || !ack.ok) {
      button.textContent = "保存失败，重试";
      button.title = err ? "服务无应答" : ack ? ack.error : "无应答";
      return;
    }
    button.textContent = "已保存";
    showReview(ack.review);
  });
});

// ---- 诊断与报告 ----
function dl(el, rows) {
  el.innerHTML = rows.map(([key, label, value]) => `<dt>${label}</dt><dd data-report="${key}">${escapeHtml(value)}</dd>`).join("");
}

function drawDiagnostics() {
  const media = report.media;
  dl($("media"), [
    ["reconnects", "拉流重连", String(media.reconnects)],
    ["dropped_frames", "丢帧（累计）", String(media.dropped_frames)],
    ["degraded_episodes", "断流次数", String(media.degraded_episodes)],
  ]);
  $("transitions").innerHTML = report.transitions.map((tr) =>
    `<li data-state="${tr.state}"><time>${clock(Date.parse(tr.at))}</time> ${STATE_TEXT[tr.state] || tr.state}（${escapeHtml(tr.reason)}）</li>`).join("");
}

const IDENTITY_REFERENCE_TEXT = {
  photo: "参考照片",
  session_start: "开考时登记的人脸",
  photo_unusable: "开考时登记的人脸（参考照片不可用）",
};

function drawReport() {
  $("report").hidden = !report.final;
  if (!report.final) return;
  const hr = report.heart_rate;
  const emotions = Object.entries(report.emotion_distribution).sort((a, b) => b[1] - a[1])
    .map(([e, share]) => `${EMOTION_TEXT[e] || e} ${pct(share)}`).join("，") || "—";
  dl($("report-fields"), [
    ["ended_at", "结束时间", `${clock(Date.parse(report.ended_at))}（${report.end_reason || "—"}）`],
    ["streaming_seconds", "分析时长", fmt(report.streaming_seconds, 0, " 秒")],
    ["face_present_seconds", "有人脸", fmt(report.face_present_seconds, 0, " 秒")],
    ["attention_mean", "专注度均值", pct(report.attention_mean)],
    ["look_away_seconds", "视线偏离", fmt(report.look_away_seconds, 0, " 秒")],
    ["looking_down_seconds", "低头", fmt(report.looking_down_seconds, 0, " 秒")],
    ["identity_held", "始终是本人", report.identity_held === null ? "未登记" : report.identity_held ? "是" : "否（换过人）"],
    ["identity_reference", "比对基准", IDENTITY_REFERENCE_TEXT[report.identity_reference] || "—"],
    ["talking_seconds", "说话", fmt(report.talking_seconds, 0, " 秒")],
    ["multi_face_seconds", "多人", fmt(report.multi_face_seconds, 0, " 秒")],
    ["heart_rate", "心率", hr.mean_bpm == null ? "—" : `均值 ${fmt(hr.mean_bpm, 0)} bpm（${fmt(hr.min_bpm, 0)}–${fmt(hr.max_bpm, 0)}），质量 ${pct(hr.quality_mean)}`],
    ["emotion_distribution", "面部情绪", emotions],
    ["anomalies", "异常事件段", String(report.anomalies.length)],
    ["risk", "风险分", `${fmt(report.risk.score, 0)}（${report.risk.level}）`],
  ]);
}

function showTimeline(data) {
  stats.timelines += 1;
  const title = who(data);
  setText($("title"), title);
  document.title = `会话 ${title}`;
  setText($("exam"), data.exam_id ? `考试 ${data.exam_id}` : "");
  setState(data.status);
  report = data.report;
  reviews = new Map(data.reviews.map((r) => [r.episode_id, r]));
  loadHistory(data.history);
  drawEpisodes();
  drawDiagnostics();
  drawReport();
  requestDraw();
}

function loadTimeline() {
  link.socket.timeout(15_000).emit("monitor.timeline", { session_id: sessionId }, (err, ack) => {
    if (err) return scheduleReload(); // 服务忙或断线：稍后再取
    if (!ack || ack.ok === false) return link.failed(`无法查看该会话：${ack ? ack.error : "无应答"}`);
    showTimeline(ack);
  });
}

function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(loadTimeline, EPISODE_RELOAD_MS);
}

// 每次连上（含重连）：订阅该会话的实时事件，再取整场数据（断线期间的点由服务端的时间序列补上）
const link = connectMonitor({
  delivery: { events: ["monitor.update"], batch: true },
  onConnect(socket) {
    socket.emit("monitor.subscribe", { session_id: sessionId }, (ack) => {
      if (!ack || !ack.ok) link.failed(`订阅失败：${ack ? ack.error : "无应答"}`);
    });
    loadTimeline();
  },
});
link.socket.on("monitor.update", onUpdate);
link.socket.on("monitor.batch", (batch) => {
  for (const [name, update] of batch.events) if (name === "monitor.update") onUpdate(update);
});
link.socket.on("monitor.review", (review) => review.session_id === sessionId && showReview(review));
link.socket.on("session.ended", (msg) => {
  if (msg.session_id !== sessionId) return;
  setState("ENDED");
  active = new Map();
  loadTimeline();
});
setInterval(() => status !== "ENDED" && drawTimeline(), 1000);
