/**
 * 学生端 AI 监考客户端（浏览器 ES 模块，无需打包）。
 *
 * 作用：在考试页里采集摄像头（≤640x480、≤15 fps）和麦克风，经 WebRTC 推送到监考服务；
 * 信令（offer/answer/ICE）、心跳与关闭通知都走网关的 Socket.IO 默认命名空间 "/"。
 * 另外在编码前从摄像头原始帧采样人脸皮肤颜色（只上传数字、不上传图像）供服务器测心率，见 ppg-sampler.js。
 * 网络或媒体服务出问题时自动重试；最终失败时状态变为 `unavailable`（“AI 监考暂不可用”），
 * 但绝不抛出异常、绝不阻塞作答——考试页只需显示提示即可。
 *
 * 用法（考试页开发者）：
 *
 *   // 建议用动态 import 并捕获异常：网关不可达时模块本身可能加载失败，考试页不应因此受影响
 *   let client = null;
 *   try {
 *     const { ProctorClient } = await import("https://<网关地址>/dashboard/student.js");
 *     client = new ProctorClient({
 *       sessionId,        // 由考试系统后端调用 POST /api/create_session 得到
 *       publishToken,     // 同上，create_session 响应里的 publish_token
 *       serverUrl: "https://<网关地址>",  // 默认 location.origin
 *       previewVideo: document.querySelector("#camera"), // 可选：显示本地摄像头画面
 *     });
 *     client.addEventListener("status", (e) => showBanner(e.detail.status, e.detail.message));
 *     client.start(); // 不必 await；返回的 Promise 只会 resolve，不会因网络问题 reject
 *   } catch (err) {
 *     console.warn("AI 监考模块加载失败，不影响作答", err);
 *   }
 *   // 交卷时：
 *   client?.close("submitted");
 *
 * 状态（`client.status`，每次变化都会派发 `status` 事件）：
 *   idle → connecting → connected ⇄ reconnecting → unavailable / closed
 *
 * 浏览器要求：Chrome / Edge 新版；页面必须处于安全上下文（HTTPS 或 localhost），否则无法调用 getUserMedia。
 * 详细说明见 docs/student-client.md。
 */

import { io } from "/vendor/socket.io.esm.min.js";
import { PpgSampler } from "./ppg-sampler.js";

/** 各状态对应的中文提示文字（可直接显示给学生）。 */
export const STATUS_TEXT = Object.freeze({
  idle: "AI 监考未开始",
  connecting: "正在连接 AI 监考…",
  connected: "AI 监考已连接",
  reconnecting: "连接中断，正在重新连接 AI 监考…",
  unavailable: "AI 监考暂不可用，不影响作答",
  closed: "AI 监考已结束",
});

/** 服务器给出这些原因时重试也无济于事，直接进入 `unavailable`。 */
export const NON_RETRYABLE_REASONS = Object.freeze([
  "invalid_token",
  "token_expired",
  "session_not_found",
  "session_ended",
  "offer_invalid",
  "token_session_mismatch",
]);

const HEARTBEAT_MS = 2000; // 心跳间隔
const MAX_RETRIES = 3; // 每轮协商失败后的重试次数（间隔 base、2*base、4*base）
const MAX_RENEGOTIATIONS = 1; // 每次媒体故障允许的自动重新协商次数；连接成功后清零
const DISCONNECTED_GRACE_MS = 8000; // ICE 处于 disconnected 超过该时间视为媒体故障
const CLOSE_ACK_MS = 1000; // close() 等待 signal.close 回执的最长时间
const ICE_ACK_MS = 5000;
const PPG_ACK_MS = 5000; // ppg.samples 回执的超时
const VIDEO_MAX_BITRATE = 1_500_000; // 视频默认最高码率 1.5 Mbit/s（maxVideoKbps 可改）
const VIDEO_MAX_FPS = 15;

const MEDIA_CONSTRAINTS = {
  video: {
    width: { ideal: 640, max: 640 },
    height: { ideal: 480, max: 480 },
    frameRate: { ideal: 15, max: 15 },
  },
  audio: {
    channelCount: 1,
    sampleRate: 16000,
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
  },
};

const LOG_PREFIX = "[proctor]";

/** 一次协商尝试失败的原因；retryable 表示可以按退避策略重试。 */
class AttemptError extends Error {
  constructor(reason, detail = "") {
    super(detail ? `${reason}: ${detail}` : reason);
    this.reason = reason;
    this.retryable = !NON_RETRYABLE_REASONS.includes(reason);
  }
}

/** 从 connect_error 中提取服务器给出的原因码（若有）。 */
function refusalReason(err) {
  const candidates = [err?.data?.reason, err?.data, err?.message].filter((v) => typeof v === "string");
  for (const text of candidates) {
    const code = NON_RETRYABLE_REASONS.find((r) => text === r || text.includes(r));
    if (code) return code;
  }
  return "connect_refused";
}

/** 视频编码偏好：H.264（packetization-mode=1、Constrained Baseline 优先）→ VP8 → rtx；其他丢弃。 */
function preferredVideoCodecs(codecs) {
  const h264 = codecs.filter((c) => c.mimeType.toLowerCase() === "video/h264");
  const vp8 = codecs.filter((c) => c.mimeType.toLowerCase() === "video/vp8");
  const rtx = codecs.filter((c) => c.mimeType.toLowerCase() === "video/rtx");
  const score = (c) => {
    const fmtp = (c.sdpFmtpLine || "").toLowerCase();
    let s = 0;
    if (fmtp.includes("packetization-mode=1")) s -= 2;
    if (/profile-level-id=42e0/.test(fmtp)) s -= 1;
    return s;
  };
  h264.sort((a, b) => score(a) - score(b));
  if (!h264.length && !vp8.length) return null;
  return [...h264, ...vp8, ...rtx];
}

/**
 * AI 监考学生端客户端。
 *
 * 事件：
 * - `status`：`CustomEvent`，`detail = {status, reason, message, ready}`，每次状态（或原因）变化时派发；
 *   `reason` 为原因码（如 `whip_unreachable`、`camera_denied`，可能为 null），`message` 为可直接显示的中文提示；
 * - `ready`：`Event`，服务器确认流已到达媒体服务器、开始分析（`signal.ready`）时派发。
 *
 * @extends EventTarget
 */
export class ProctorClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.sessionId 会话 ID（create_session 返回的 session_id）
   * @param {string} options.publishToken 推流令牌（create_session 返回的 publish_token）
   * @param {string} [options.serverUrl=location.origin] 网关地址（Socket.IO 服务器）
   * @param {number} [options.retryBaseMs=1000] 重试退避基数：第 1/2/3 次重试前分别等待 1/2/4 倍
   * @param {number} [options.answerTimeoutMs=15000] 等待 answer（以及 Socket 连上、ICE 连通）的超时
   * @param {HTMLVideoElement|null} [options.previewVideo=null] 可选，用于显示本地摄像头画面的 <video>
   * @param {number} [options.maxVideoKbps=1500] 视频码率上限（kbit/s）
   * @param {boolean} [options.ppgSampling=true] 是否在本地采样人脸皮肤颜色供服务器测心率（只上传数字，不上传图像）
   */
  constructor({
    sessionId,
    publishToken,
    serverUrl = globalThis.location?.origin,
    retryBaseMs = 1000,
    answerTimeoutMs = 15000,
    previewVideo = null,
    maxVideoKbps = VIDEO_MAX_BITRATE / 1000,
    ppgSampling = true,
  } = {}) {
    super();
    this.sessionId = sessionId;
    this.publishToken = publishToken;
    this.serverUrl = serverUrl;
    this.retryBaseMs = Math.max(0, Number(retryBaseMs) || 0);
    this.answerTimeoutMs = Math.max(1, Number(answerTimeoutMs) || 15000);
    this.previewVideo = previewVideo;
    this.maxVideoBitrate = Math.max(100, Number(maxVideoKbps) || VIDEO_MAX_BITRATE / 1000) * 1000;
    this.ppgSampling = ppgSampling !== false;

    this._status = "idle";
    this._reason = null;
    this._ready = false;
    this._stream = null; // MediaStream（摄像头 + 麦克风）
    this._socket = null;
    this._ppg = null; // PpgSampler（本地摄像头帧的皮肤颜色采样，见 ppg-sampler.js）
    this._media = null; // 当前媒体会话 {pc, queue, answered, disconnectTimer}
    this._attempt = null; // 进行中的协商尝试 {media, abort, onAnswer}
    this._negotiating = false;
    this._renegotiations = 0;
    this._heartbeatTimer = null;
    this._startPromise = null;
    this._closePromise = null;
    this._stopped = false; // close() 或不可恢复错误之后为 true
    this._warned = new Set(); // 已打印过的警告（避免刷屏）
    this._wakers = new Set(); // 退避等待中的唤醒函数：close() 时立即结束等待
    this._onPageHide = () => this.close("pagehide");
    this._onBeforeUnload = (event) => {
      // 考试页若弹出“确定离开？”确认框，用户可能取消离开：此时不结束监考，真正离开时由 pagehide 处理
      if (event.defaultPrevented || (typeof event.returnValue === "string" && event.returnValue !== "")) return;
      this.close("beforeunload");
    };
  }

  /** 当前状态：`idle`、`connecting`、`connected`、`reconnecting`、`unavailable`、`closed` 之一。 */
  get status() {
    return this._status;
  }

  /** 服务器确认流已到达、开始分析（收到 `signal.ready`）后为 true；重新协商时复位为 false。 */
  get ready() {
    return this._ready;
  }

  /**
   * 开始监考：打开摄像头/麦克风、连接网关、发送 offer，失败时按退避策略重试。
   * 可重复调用（返回同一个 Promise）。只会 resolve，不会因网络或设备问题 reject。
   * @returns {Promise<string>} 首轮协商结束时的状态（通常是 `connected` 或 `unavailable`）
   */
  start() {
    if (!this._startPromise) {
      this._startPromise = this._start().catch((err) => {
        console.warn(LOG_PREFIX, "启动时出现意外错误", err);
        this._fail("internal_error");
        return this._status;
      });
    }
    return this._startPromise;
  }

  /**
   * 结束监考：通知服务器（`signal.close`）、停止心跳、关闭 WebRTC 连接、关闭摄像头和麦克风、断开 Socket。
   * 幂等；页面 `pagehide` / `beforeunload` 时会自动调用。
   * @param {string} [reason="submitted"] 结束原因，原样发给服务器
   * @returns {Promise<void>} 服务器确认（或最多等待 1 秒）后 resolve；一般无需 await
   */
  close(reason = "submitted") {
    if (this._closePromise) return this._closePromise;
    const socket = this._socket;
    this._teardown(false);
    this._setStatus("closed", reason);
    console.info(LOG_PREFIX, `监考已结束（${reason}）`);
    this._closePromise = new Promise((resolve) => {
      if (!socket) return resolve();
      const finish = () => {
        socket.disconnect();
        resolve();
      };
      if (socket.connected) {
        socket.timeout(CLOSE_ACK_MS).emit("signal.close", { session_id: this.sessionId, reason }, finish);
      } else {
        finish();
      }
    });
    return this._closePromise;
  }

  // ───────────────────────── 内部实现 ─────────────────────────

  async _start() {
    if (this._stopped) return this._status;
    if (!this.sessionId || !this.publishToken) {
      console.warn(LOG_PREFIX, "缺少 sessionId 或 publishToken");
      this._fail("missing_credentials");
      return this._status;
    }
    this._setStatus("connecting");
    globalThis.addEventListener("pagehide", this._onPageHide);
    globalThis.addEventListener("beforeunload", this._onBeforeUnload);

    const media = await this._openCamera();
    if (this._stopped) {
      media.stream?.getTracks().forEach((t) => t.stop());
      return this._status;
    }
    if (!media.stream) {
      this._fail(media.reason, media.message);
      return this._status;
    }
    this._stream = media.stream;
    this._showPreview();

    this._connectSocket();
    this._startPpg();
    this._heartbeatTimer = setInterval(() => this._heartbeat(), HEARTBEAT_MS);
    await this._negotiate("connecting");
    return this._status;
  }

  /** 打开摄像头和麦克风；麦克风不可用时退回只用摄像头。 */
  async _openCamera() {
    if (!globalThis.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      console.warn(LOG_PREFIX, "无法使用摄像头：页面不是安全上下文（需 HTTPS 或 localhost）或浏览器不支持");
      return {
        reason: "insecure_context",
        message: "当前页面无法使用摄像头（需 HTTPS），AI 监考暂不可用，不影响作答",
      };
    }
    try {
      return { stream: await navigator.mediaDevices.getUserMedia(MEDIA_CONSTRAINTS) };
    } catch (err) {
      // 没有麦克风、麦克风被占用或只拒绝了麦克风权限：退回只用摄像头
      console.warn(LOG_PREFIX, "同时打开摄像头和麦克风失败，改为只用摄像头", err?.name || err);
    }
    try {
      return { stream: await navigator.mediaDevices.getUserMedia({ video: MEDIA_CONSTRAINTS.video }) };
    } catch (err) {
      const denied = err?.name === "NotAllowedError" || err?.name === "SecurityError";
      console.warn(LOG_PREFIX, "无法打开摄像头", err?.name || err);
      return denied
        ? { reason: "camera_denied", message: "未获得摄像头权限，AI 监考暂不可用，不影响作答" }
        : { reason: "camera_unavailable", message: "无法打开摄像头，AI 监考暂不可用，不影响作答" };
    }
  }

  _showPreview() {
    const video = this.previewVideo;
    if (!video) return;
    video.muted = true;
    video.playsInline = true;
    video.srcObject = this._stream;
    video.play?.()?.catch?.(() => {});
  }

  _connectSocket() {
    const socket = io(this.serverUrl, {
      auth: { session_id: this.sessionId, publish_token: this.publishToken },
      transports: ["websocket"],
      reconnection: true,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      forceNew: true,
    });
    this._socket = socket;
    let everConnected = false;

    socket.on("connect", () => {
      if (socket !== this._socket) return;
      console.info(LOG_PREFIX, everConnected ? "信令连接已恢复" : "信令已连接");
      everConnected = true;
      this._warned.delete("connect_error");
      this._heartbeat(); // 先心跳：服务器据此把本连接加入会话房间（接收 signal.close）
      // 重连后若媒体不在连通状态（或此前已判定不可用），重新协商
      if (!this._stopped && !this._negotiating && !this._mediaConnected()) {
        this._renegotiations = 0;
        this._negotiate("reconnecting", "socket_reconnected");
      }
    });
    socket.on("disconnect", (why) => {
      if (socket !== this._socket || this._stopped) return;
      console.warn(LOG_PREFIX, `信令连接断开（${why}）`);
      this._attempt?.abort(new AttemptError("socket_disconnected", why));
    });
    socket.on("connect_error", (err) => {
      if (socket !== this._socket) return;
      if (!this._warned.has("connect_error")) {
        this._warned.add("connect_error");
        console.warn(LOG_PREFIX, "信令连接失败", err?.message || err);
      }
    });
    socket.on("signal.answer", (data) => {
      if (data?.session_id !== undefined && data.session_id !== this.sessionId) return;
      if (this._attempt?.onAnswer) this._attempt.onAnswer(data?.sdp);
    });
    socket.on("signal.ready", (data) => {
      if (data?.session_id !== undefined && data.session_id !== this.sessionId) return;
      if (this._stopped || this._ready) return;
      this._ready = true;
      console.info(LOG_PREFIX, "服务器已收到视频流，开始分析");
      this.dispatchEvent(new Event("ready"));
    });
    socket.on("signal.close", (data) => {
      if (data?.session_id !== undefined && data.session_id !== this.sessionId) return;
      this._onServerClose(String(data?.reason || "server_closed"));
    });
    socket.on("ppg.roi", (data) => {
      if (socket !== this._socket || data?.session_id !== this.sessionId) return;
      this._ppg?.setRoi(data.roi, data.seq);
    });
  }

  /** 在本地视频轨道上（重新）开始皮肤颜色采样；每批数据经 ppg.samples 上传。 */
  _startPpg() {
    this._stopPpg();
    const track = this._stream?.getVideoTracks()[0];
    if (!this.ppgSampling || !track || !this._socket) return;
    try {
      this._ppg = new PpgSampler({ track, onBatch: (samples, roiSeq) => this._sendPpg(samples, roiSeq) });
      this._ppg.start();
    } catch (err) {
      this._ppg = null;
      console.warn(LOG_PREFIX, "无法启动心率采样，不影响监考", err?.message || err);
    }
  }

  _stopPpg() {
    this._ppg?.stop();
    this._ppg = null;
  }

  /** 上传一批采样；Socket 未连上时直接丢弃（不缓存）。 */
  _sendPpg(samples, roiSeq) {
    const socket = this._socket;
    if (this._stopped || !socket?.connected) return;
    const payload = { session_id: this.sessionId, roi_seq: roiSeq, samples };
    socket.timeout(PPG_ACK_MS).emit("ppg.samples", payload, (err, ack) => {
      if ((err || ack?.ok !== true) && !this._warned.has("ppg")) {
        this._warned.add("ppg");
        console.warn(LOG_PREFIX, "上传心率采样失败", err?.message || ack?.error || "");
      }
    });
  }

  /** 服务器关闭了媒体会话（或流停滞）。 */
  _onServerClose(reason) {
    if (this._stopped) return;
    console.warn(LOG_PREFIX, `服务器关闭了媒体会话（${reason}）`);
    const err = new AttemptError(reason);
    if (!err.retryable) {
      this._fail(reason);
    } else if (this._attempt) {
      this._attempt.abort(err); // 协商中：按重试逻辑处理
    } else if (this._media) {
      this._onMediaFailure(reason); // 已连通后停滞（如 no_frames_for_10s）：重新协商
    }
  }

  _mediaConnected() {
    return this._media?.pc.connectionState === "connected";
  }

  /**
   * 一轮协商：首次尝试 + 最多 3 次退避重试。全部失败后进入 unavailable（保留摄像头和 Socket，
   * Socket 重连后会再试一轮）。不可重试的原因直接进入 unavailable 并释放资源。
   */
  async _negotiate(status, reason = null) {
    if (this._negotiating || this._stopped) return;
    this._negotiating = true;
    this._ready = false;
    this._setStatus(status, reason);
    let lastReason = reason || "unknown";
    try {
      for (let attempt = 0; attempt <= MAX_RETRIES; attempt += 1) {
        if (attempt > 0) {
          const delay = this.retryBaseMs * 2 ** (attempt - 1);
          console.info(LOG_PREFIX, `${delay} ms 后第 ${attempt} 次重试（上次失败：${lastReason}）`);
          await this._sleep(delay);
        }
        if (this._stopped) return;
        try {
          await this._tryOffer();
          this._renegotiations = 0;
          this._setStatus("connected");
          console.info(LOG_PREFIX, "媒体已连通");
          return;
        } catch (err) {
          if (this._stopped) return;
          const failure = err instanceof AttemptError ? err : new AttemptError("internal_error", String(err));
          lastReason = failure.reason;
          this._closeMedia();
          console.warn(LOG_PREFIX, `协商失败：${failure.message}`);
          if (!failure.retryable) {
            this._fail(failure.reason);
            return;
          }
        }
      }
      console.warn(LOG_PREFIX, `已重试 ${MAX_RETRIES} 次仍失败，AI 监考暂不可用（${lastReason}）`);
      this._setStatus("unavailable", lastReason);
    } finally {
      this._negotiating = false;
    }
  }

  /** 一次协商尝试：新建 RTCPeerConnection → offer → 等 answer → 等 ICE 连通。失败时抛 AttemptError。 */
  async _tryOffer() {
    this._closeMedia();
    let abort;
    const aborted = new Promise((_, reject) => {
      abort = reject;
    });
    aborted.catch(() => {});
    const attempt = { abort, onAnswer: null };
    this._attempt = attempt;
    const guard = (promise) => Promise.race([promise, aborted]);
    try {
      await guard(this._ensureSocket());
      await this._ensureTracks();

      const media = this._createMedia();
      const { pc } = media;
      await guard(pc.setLocalDescription(await guard(pc.createOffer())));

      const answerSdp = await guard(
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new AttemptError("answer_timeout")), this.answerTimeoutMs);
          attempt.onAnswer = (sdp) => {
            clearTimeout(timer);
            if (typeof sdp === "string" && sdp) resolve(sdp);
            else reject(new AttemptError("answer_invalid", "answer 缺少 sdp"));
          };
          this._socket
            .timeout(this.answerTimeoutMs)
            .emit("signal.offer", { session_id: this.sessionId, sdp: pc.localDescription.sdp }, (err, ack) => {
              if (err) {
                clearTimeout(timer);
                reject(new AttemptError("offer_ack_timeout"));
              } else if (!ack || ack.ok !== true) {
                clearTimeout(timer);
                reject(new AttemptError(ack?.reason || "offer_rejected", ack?.error || ""));
              }
            });
        }),
      );
      attempt.onAnswer = null;

      try {
        await guard(pc.setRemoteDescription({ type: "answer", sdp: answerSdp }));
      } catch (err) {
        if (err instanceof AttemptError) throw err;
        throw new AttemptError("answer_invalid", err?.message || String(err));
      }
      media.answered = true;
      for (const candidate of media.queue.splice(0)) this._sendCandidate(candidate);

      await guard(this._waitConnected(pc));
    } finally {
      if (this._attempt === attempt) this._attempt = null;
    }
  }

  /** 等待 Socket 连上；已连上则立即返回。 */
  _ensureSocket() {
    const socket = this._socket;
    if (socket.connected) return Promise.resolve();
    if (!socket.active) socket.connect(); // 被服务器拒绝或踢下线后不会自动重连：手动再连一次
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        socket.off("connect", onConnect);
        socket.off("connect_error", onError);
      };
      const onConnect = () => {
        done();
        resolve();
      };
      const onError = (err) => {
        done();
        // active 为 false 表示服务器拒绝了连接（如令牌无效），否则只是暂时连不上
        reject(new AttemptError(socket.active ? "socket_unreachable" : refusalReason(err), err?.message || ""));
      };
      const timer = setTimeout(() => {
        done();
        reject(new AttemptError("socket_timeout"));
      }, this.answerTimeoutMs);
      socket.on("connect", onConnect);
      socket.on("connect_error", onError);
    });
  }

  /** 摄像头被拔出等导致视频轨道结束时，重新打开设备。 */
  async _ensureTracks() {
    const video = this._stream?.getVideoTracks()[0];
    if (video && video.readyState === "live") return;
    console.warn(LOG_PREFIX, "摄像头轨道已结束，尝试重新打开");
    const media = await this._openCamera();
    if (!media.stream) throw new AttemptError("camera_unavailable", media.reason);
    if (this._stopped) {
      media.stream.getTracks().forEach((t) => t.stop());
      throw new AttemptError("closed");
    }
    this._stream?.getTracks().forEach((t) => t.stop());
    this._stream = media.stream;
    this._showPreview();
    this._startPpg();
  }

  /** 新建 RTCPeerConnection 并挂上同一组轨道（只发送：1 路视频 + 至多 1 路音频）。 */
  _createMedia() {
    const pc = new RTCPeerConnection({ iceServers: [] });
    const media = { pc, queue: [], answered: false, disconnectTimer: null };
    this._media = media;

    const videoTrack = this._stream.getVideoTracks()[0];
    const audioTrack = this._stream.getAudioTracks()[0];
    const video = pc.addTransceiver(videoTrack, {
      direction: "sendonly",
      streams: [this._stream],
      sendEncodings: [{ maxBitrate: this.maxVideoBitrate, maxFramerate: VIDEO_MAX_FPS }],
    });
    this._preferCodecs(video);
    if (audioTrack) pc.addTransceiver(audioTrack, { direction: "sendonly", streams: [this._stream] });

    pc.addEventListener("icecandidate", (event) => {
      if (this._media !== media) return;
      const candidate = event.candidate;
      if (!candidate || !candidate.candidate) return; // 忽略 end-of-candidates
      const json = candidate.toJSON();
      if (media.answered) this._sendCandidate(json);
      else media.queue.push(json); // answer 到达前先排队
    });
    pc.addEventListener("connectionstatechange", () => this._onConnectionState(media));
    return media;
  }

  _preferCodecs(transceiver) {
    if (typeof transceiver.setCodecPreferences !== "function") return;
    for (const source of [globalThis.RTCRtpSender, globalThis.RTCRtpReceiver]) {
      const codecs = source?.getCapabilities?.("video")?.codecs;
      const preferred = codecs && preferredVideoCodecs(codecs);
      if (!preferred) continue;
      try {
        transceiver.setCodecPreferences(preferred);
        return;
      } catch (err) {
        // 个别浏览器版本按接收端能力校验：换 RTCRtpReceiver 的能力列表再试
      }
    }
    console.warn(LOG_PREFIX, "无法设置视频编码偏好，使用浏览器默认");
  }

  _sendCandidate(candidate) {
    const socket = this._socket;
    if (!socket?.connected) return;
    socket.timeout(ICE_ACK_MS).emit("signal.ice", { session_id: this.sessionId, candidate }, (err, ack) => {
      if ((err || ack?.ok !== true) && !this._warned.has("ice")) {
        this._warned.add("ice");
        console.warn(LOG_PREFIX, "发送 ICE 候选失败", err?.message || ack?.error || ack?.reason || "");
      }
    });
  }

  _waitConnected(pc) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pc.connectionState === "connected") finish(resolve);
        else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
          finish(() => reject(new AttemptError("ice_failed", pc.connectionState)));
        }
      };
      const finish = (fn) => {
        clearTimeout(timer);
        pc.removeEventListener("connectionstatechange", check);
        fn();
      };
      const timer = setTimeout(() => finish(() => reject(new AttemptError("ice_timeout"))), this.answerTimeoutMs);
      pc.addEventListener("connectionstatechange", check);
      check();
    });
  }

  /** 已连通之后的媒体状态变化（协商中的变化由 _waitConnected 处理）。 */
  _onConnectionState(media) {
    if (this._media !== media || this._attempt || this._stopped) return;
    const state = media.pc.connectionState;
    clearTimeout(media.disconnectTimer);
    media.disconnectTimer = null;
    if (state === "connected") {
      this._renegotiations = 0;
      if (this._status !== "connected") this._setStatus("connected");
    } else if (state === "failed") {
      this._onMediaFailure("ice_failed");
    } else if (state === "disconnected") {
      media.disconnectTimer = setTimeout(() => {
        if (this._media === media && media.pc.connectionState === "disconnected") {
          this._onMediaFailure("ice_disconnected");
        }
      }, DISCONNECTED_GRACE_MS);
    }
  }

  /** 媒体在连通后出故障：每次故障允许自动重新协商一次（连接成功后计数清零）。 */
  _onMediaFailure(reason) {
    if (this._stopped || this._negotiating) return;
    if (this._renegotiations >= MAX_RENEGOTIATIONS) {
      console.warn(LOG_PREFIX, `媒体再次故障（${reason}），AI 监考暂不可用`);
      this._closeMedia();
      this._setStatus("unavailable", reason);
      return;
    }
    this._renegotiations += 1;
    console.warn(LOG_PREFIX, `媒体故障（${reason}），重新协商`);
    this._closeMedia();
    this._negotiate("reconnecting", reason);
  }

  /** 可被 close() 提前结束的等待。 */
  _sleep(ms) {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this._wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this._wakers.add(wake);
    });
  }

  _heartbeat() {
    const socket = this._socket;
    if (this._stopped || !socket?.connected) return;
    socket.timeout(HEARTBEAT_MS).emit("session.heartbeat", { session_id: this.sessionId, ts: Date.now() / 1000 }, (err, ack) => {
      if (err || ack?.ok === true) return; // 超时不算错误：下一次心跳会再发
      const key = `heartbeat:${ack?.error}`;
      if (!this._warned.has(key)) {
        this._warned.add(key);
        console.warn(LOG_PREFIX, "心跳被拒绝", ack?.error || "");
      }
    });
  }

  _closeMedia() {
    this._ppg?.setRoi(null); // 服务器看不到视频时 ROI 失效：等它对新连接重新下发
    const media = this._media;
    if (!media) return;
    this._media = null;
    clearTimeout(media.disconnectTimer);
    try {
      media.pc.close();
    } catch {
      // 忽略
    }
  }

  /** 不可恢复的失败：释放全部资源，状态 unavailable。 */
  _fail(reason, message) {
    if (this._stopped) return;
    console.warn(LOG_PREFIX, `AI 监考暂不可用（${reason}）`);
    this._teardown(true);
    this._setStatus("unavailable", reason, message);
  }

  _teardown(disconnectSocket) {
    this._stopped = true;
    this._ready = false;
    this._attempt?.abort(new AttemptError("closed"));
    for (const wake of [...this._wakers]) wake();
    clearInterval(this._heartbeatTimer);
    this._heartbeatTimer = null;
    this._closeMedia();
    this._stopPpg();
    this._stream?.getTracks().forEach((t) => t.stop());
    this._stream = null;
    if (this.previewVideo) this.previewVideo.srcObject = null;
    globalThis.removeEventListener("pagehide", this._onPageHide);
    globalThis.removeEventListener("beforeunload", this._onBeforeUnload);
    if (disconnectSocket && this._socket) {
      this._socket.disconnect();
    }
  }

  _setStatus(status, reason = null, message = null) {
    if (this._status === "closed") return;
    if (status === this._status && reason === this._reason && !message) return;
    this._status = status;
    this._reason = reason;
    this._message = message || STATUS_TEXT[status];
    if (status !== "connected") console.info(LOG_PREFIX, `状态：${status}${reason ? `（${reason}）` : ""}`);
    this.dispatchEvent(
      new CustomEvent("status", {
        detail: { status: this._status, reason: this._reason, message: this._message, ready: this._ready },
      }),
    );
  }
}

export default ProctorClient;
