// 两个教师页面（监控墙 monitor.js、会话页 session.js）共用的文字与格式。

export const ANOMALY_TEXT = {
  NO_FACE: "无人脸",
  MULTI_FACE: "多人",
  LOOK_AWAY: "视线偏离",
  LOOKING_DOWN: "低头",
  OCCLUSION: "遮挡",
  TALKING: "说话",
  IDENTITY_CHANGED: "换人",
};
export const SEVERITY_TEXT = { low: "轻", medium: "中", high: "重" };
export const EMOTION_TEXT = {
  angry: "生气", disgust: "厌恶", fear: "害怕", happy: "高兴", sad: "难过", surprise: "惊讶", neutral: "平静",
};

export function fmt(value, digits = 0, unit = "") {
  if (value === null || value === undefined) return "—";
  return `${Number(value).toFixed(digits)}${unit}`;
}

export function pct(ratio) {
  return ratio === null || ratio === undefined ? "—" : `${Math.round(ratio * 100)}%`;
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// 卡片与页面标题：考生编号，没有时用流名
export function who(update) {
  return update.student_id ? `考生 ${update.student_id}` : update.stream_name || update.session_id;
}

export function sessionHref(id) {
  return `/monitor/sessions/${encodeURIComponent(id)}`;
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString("zh-CN", { hour12: false });
}

// 只在值变了时写 DOM：几百张卡片每秒各更新几次，多数字段不变
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function setAttr(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

export function emotionText(emotion) {
  if (!emotion || !emotion.dominant) return "—";
  return `${EMOTION_TEXT[emotion.dominant] || emotion.dominant} ${pct(emotion.confidence)}`;
}

export function heartRate(ppg) {
  if (ppg.hr_bpm === null || ppg.hr_bpm === undefined) return "—";
  const source = ppg.source === "client" ? "学生端采样" : "视频";
  return `${fmt(ppg.hr_bpm, 0, " bpm")} · 质量 ${pct(ppg.signal_quality)} · ${source}`;
}

// 音量：只有电平（dBFS）与是否在说话，从不播放音频
export function audioText(audio) {
  if (audio.level_dbfs === null || audio.level_dbfs === undefined) return "无音轨";
  return `${fmt(audio.level_dbfs, 0, " dB")}${audio.talking ? " 说话中" : ""}`;
}
