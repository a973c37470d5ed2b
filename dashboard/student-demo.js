// 学生端监考演示页：演示 /dashboard/student.js（ProctorClient）的接入方式。
// URL 参数：?session_id=...（预填会话）、retry_base_ms=...（重试退避基数，默认 1000）、
// max_video_kbps=...（视频码率上限，默认 1500）；推流令牌放在 # 之后：#publish_token=...
// （# 之后的部分不发给服务器、不进访问日志；读出后从地址栏去掉）。

const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(window.location.search);
const retryBaseMs = Number.parseInt(params.get("retry_base_ms") || "", 10);
const maxVideoKbps = Number.parseInt(params.get("max_video_kbps") || "", 10);

const els = {
  apiKey: $("#api-key"),
  create: $("#create"),
  sessionId: $("#session-id"),
  publishToken: $("#publish-token"),
  start: $("#start"),
  submit: $("#submit"),
  status: $("#status"),
  ready: $("#ready"),
  notice: $("#notice"),
  reason: $("#reason"),
  error: $("#error"),
  preview: $("#preview"),
  log: $("#log"),
};

els.sessionId.value = params.get("session_id") || "";
els.publishToken.value = new URLSearchParams(window.location.hash.slice(1)).get("publish_token") || "";
if (window.location.hash) history.replaceState(null, "", window.location.pathname + window.location.search);

let client = null;

function log(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString("zh-CN", { hour12: false })} ${text}`;
  els.log.prepend(item);
}

function showError(text) {
  els.error.textContent = text || "";
}

function setReady(ready) {
  els.ready.dataset.ready = ready ? "true" : "false";
  els.ready.textContent = ready ? "分析已开始" : "分析未开始";
}

function render({ status, reason, message, ready }) {
  els.status.dataset.status = status;
  els.status.textContent = message;
  els.reason.textContent = reason || "—";
  els.notice.hidden = status !== "unavailable";
  setReady(Boolean(ready));
  const active = status === "connecting" || status === "connected" || status === "reconnecting";
  els.start.disabled = active;
  els.submit.disabled = !client || status === "closed" || status === "idle";
}

// 网关返回的错误：{detail: "..."}，或参数校验失败时 {detail: [{msg, loc}, ...]}
function errorDetail(body, response) {
  const detail = body?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("\n");
  }
  return `HTTP ${response.status} ${response.statusText}`;
}

$("#create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const studentId = `demo-${Math.random().toString(36).slice(2, 8)}`;
  els.create.disabled = true;
  try {
    const response = await fetch("/api/create_session", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Key": els.apiKey.value },
      body: JSON.stringify({ exam_id: "demo", student_id: studentId }),
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      showError(`创建会话失败：${errorDetail(body, response)}`);
      return;
    }
    els.sessionId.value = body.session_id;
    els.publishToken.value = body.publish_token;
    log(`已创建会话 ${body.session_id}（学生 ${studentId}，流 ${body.stream_name}）`);
  } catch (err) {
    showError(`创建会话失败：无法访问网关（${err.message || err}）`);
  } finally {
    els.create.disabled = false;
  }
});

els.start.addEventListener("click", async () => {
  showError("");
  const sessionId = els.sessionId.value.trim();
  const publishToken = els.publishToken.value.trim();
  if (!sessionId || !publishToken) {
    showError("请先创建演示会话，或填写 session_id 与 publish_token");
    return;
  }
  // 考试页推荐的接入方式：动态 import 并捕获异常，监考模块加载失败也不影响作答
  let ProctorClient;
  try {
    ({ ProctorClient } = await import("/dashboard/student.js"));
  } catch (err) {
    showError(`监考模块加载失败（不影响作答）：${err.message || err}`);
    render({ status: "unavailable", reason: "module_load_failed", message: "AI 监考暂不可用，不影响作答" });
    return;
  }
  if (client) client.close("restart");
  client = new ProctorClient({
    sessionId,
    publishToken,
    previewVideo: els.preview,
    retryBaseMs: Number.isFinite(retryBaseMs) && retryBaseMs >= 0 ? retryBaseMs : 1000,
    ...(Number.isFinite(maxVideoKbps) && maxVideoKbps > 0 ? { maxVideoKbps } : {}),
  });
  window.proctorClient = client;
  const current = client;
  client.addEventListener("status", (event) => {
    if (current !== client) return;
    render(event.detail);
    log(`状态 ${event.detail.status}${event.detail.reason ? `（${event.detail.reason}）` : ""}`);
  });
  client.addEventListener("ready", () => {
    if (current !== client) return;
    setReady(true);
    log("服务器已开始分析（signal.ready）");
  });
  const result = await client.start();
  log(`start() 完成：${result}`);
});

els.submit.addEventListener("click", () => {
  client?.close("submitted");
});
