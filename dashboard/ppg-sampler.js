/**
 * 浏览器端 rPPG 采样（ES 模块，无需打包）。
 *
 * 为什么在浏览器里采样：心率信号是皮肤亮度约 0.3% 的微小起伏，WebRTC 的 H.264/VP8 编码会把它量化掉，
 * 服务器从收到的视频里测不出心率。所以学生端在**编码之前**，从摄像头原始帧里取人脸区域皮肤像素的 RGB 均值，
 * 只上传这些数字（每帧 4 个数：时间和 R、G、B），不上传任何图像。
 *
 * 人脸区域（ROI）由服务器告知（`setRoi`）；没有 ROI 时不产生任何数据。
 * 皮肤判定与服务器 `workers/analysis/ppg.py` 的 `SkinSampler` 一致：
 * YCrCb 色度与参照色度的距离 ≤ 10，且 40 < Y < 245；参照色度取 ROI 中部的均值并做指数平滑；
 * 皮肤像素按二维 Hann 窗加权平均（框边权重为 0）。
 *
 * 用法：
 *
 *   const sampler = new PpgSampler({ track, onBatch: (samples, roiSeq) => send(samples, roiSeq) });
 *   sampler.start();
 *   sampler.setRoi([0.3, 0.2, 0.7, 0.8], 1); // 服务器发来的 ROI（0..1 相对坐标）；null 表示没有人脸
 *   sampler.stop();
 */

const CHROMA_RADIUS = 10; // 与参照色度的最大距离（Cr/Cb 单位）
const CHROMA_SMOOTHING = 0.05; // 参照色度的指数平滑系数
const LUMA_MIN = 40; // 过暗（头发、阴影）的像素不算皮肤
const LUMA_MAX = 245; // 过曝的像素不算皮肤
const MIN_SKIN_PIXELS = 20; // 皮肤像素少于该数时这一帧不产生数据
const MAX_BATCH = 64; // 每批最多行数，也是缓存上限
const FALLBACK_INTERVAL_MS = 66; // 浏览器不支持 requestVideoFrameCallback 时的轮询间隔
const ROI_RESET_FRACTION = 0.3; // ROI 移动超过其宽/高的该比例时重新取参照色度

const round3 = (v) => Math.round(v * 1000) / 1000;

/** 校验并规范化 ROI：4 个 0..1 的有限数且 x0<x1、y0<y1，否则返回 null。 */
function normalizeRoi(roi) {
  if (!Array.isArray(roi) || roi.length !== 4) return null;
  const box = roi.map((v) => Math.min(1, Math.max(0, Number(v))));
  if (box.some((v) => !Number.isFinite(v)) || box[0] >= box[2] || box[1] >= box[3]) return null;
  return box;
}

/**
 * 一帧 ROI 图像中皮肤像素的 RGB 加权均值（与服务器的 `SkinSampler.sample` 相同的算法）。
 * @param {Uint8ClampedArray} data RGBA 像素（`ImageData.data`）
 * @param {number} width 宽（像素）
 * @param {number} height 高（像素）
 * @param {{ref: number[]|null}} state 参照色度 [Cr, Cb] 与缓存的窗函数，跨帧保存；函数会更新它
 * @returns {number[]|null} [r, g, b]；皮肤像素不足时为 null
 */
export function skinMean(data, width, height, state) {
  // 参照色度：ROI 中部（行 35%..60%、列 30%..70%）的平均 Cr/Cb（BT.601 全范围，同 OpenCV）
  const r0 = Math.floor(height * 0.35);
  const r1 = Math.floor(height * 0.6);
  const c0 = Math.floor(width * 0.3);
  const c1 = Math.floor(width * 0.7);
  let sumCr = 0;
  let sumCb = 0;
  let n = 0;
  for (let y = r0; y < r1; y += 1) {
    for (let i = (y * width + c0) * 4, end = (y * width + c1) * 4; i < end; i += 4) {
      const luma = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
      sumCr += (data[i] - luma) * 0.713;
      sumCb += (data[i + 2] - luma) * 0.564;
      n += 1;
    }
  }
  if (n === 0) return null;
  const cr = sumCr / n + 128;
  const cb = sumCb / n + 128;
  const ref = state.ref;
  if (!ref || Math.hypot(cr - ref[0], cb - ref[1]) > 2 * CHROMA_RADIUS) {
    state.ref = [cr, cb]; // 首帧或换了人/光照突变：重新取参照
  } else {
    ref[0] += CHROMA_SMOOTHING * (cr - ref[0]);
    ref[1] += CHROMA_SMOOTHING * (cb - ref[1]);
  }
  // 掩膜：色度距离 ≤ 半径且亮度在范围内；掩膜内的 R、G、B 按二维 Hann 窗加权平均
  // （框边权重为 0：头部移动时从框边进出的皮肤不会把移动的节奏带进均值）
  const refCr = state.ref[0] - 128;
  const refCb = state.ref[1] - 128;
  const radius2 = CHROMA_RADIUS * CHROMA_RADIUS;
  const wx = hann(width, state);
  const wy = hann(height, state);
  let sr = 0;
  let sg = 0;
  let sb = 0;
  let sw = 0;
  let count = 0;
  for (let y = 0, i = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1, i += 4) {
      const r = data[i];
      const g = data[i + 1];
      const b = data[i + 2];
      const luma = 0.299 * r + 0.587 * g + 0.114 * b;
      if (luma <= LUMA_MIN || luma >= LUMA_MAX) continue;
      const dcr = (r - luma) * 0.713 - refCr;
      const dcb = (b - luma) * 0.564 - refCb;
      if (dcr * dcr + dcb * dcb > radius2) continue;
      const weight = wx[x] * wy[y];
      sr += weight * r;
      sg += weight * g;
      sb += weight * b;
      sw += weight;
      count += 1;
    }
  }
  if (count < MIN_SKIN_PIXELS || sw <= 0) return null;
  return [sr / sw, sg / sw, sb / sw];
}

/** 长度为 n 的对称 Hann 窗（同 numpy.hanning），按长度缓存在 state 里。 */
function hann(n, state) {
  state.hann ??= new Map();
  let win = state.hann.get(n);
  if (!win) {
    win = new Float32Array(n);
    for (let k = 0; k < n; k += 1) win[k] = n === 1 ? 1 : 0.5 - 0.5 * Math.cos((2 * Math.PI * k) / (n - 1));
    state.hann.set(n, win);
  }
  return win;
}

/**
 * 从视频轨道逐帧采样 ROI 内皮肤的 RGB 均值，按批交给 `onBatch`。
 *
 * 每行为 `[t_ms, r, g, b]`：`t_ms` 为该帧的采集时间（`performance.now()` 时钟，毫秒，严格递增），
 * r、g、b 为 0..255 的浮点数（保留 3 位小数）。每 `batchMs` 交出一批（1..64 行，没有数据时不调用）；
 * ROI 框变化或取消时先交出旧 ROI 下的数据，所以一批内的行都来自同一个 ROI。
 */
export class PpgSampler {
  /**
   * @param {object} options
   * @param {MediaStreamTrack} options.track 视频轨道（不会被停止，归调用方所有）
   * @param {(samples: number[][], roiSeq: number|null) => void} options.onBatch 每批数据的回调
   * @param {number} [options.batchMs=1000] 交出数据的间隔（毫秒）
   * @param {number} [options.maxSide=160] ROI 缩放后的最长边（像素），决定每帧的计算量
   */
  constructor({ track, onBatch, batchMs = 1000, maxSide = 160 } = {}) {
    this.track = track;
    this.onBatch = onBatch;
    this.batchMs = Math.max(1, Number(batchMs) || 1000);
    this.maxSide = Math.max(8, Math.round(Number(maxSide) || 160));
    this._roi = null;
    this._seq = null;
    this._chroma = { ref: null };
    this._pending = [];
    this._lastT = -Infinity;
    this._video = null;
    this._frameHandle = null; // requestVideoFrameCallback 的句柄
    this._pollTimer = null; // 不支持 rVFC 时的轮询定时器
    this._batchTimer = null;
    this._canvas = null;
    this._ctx = null;
    this._warned = false;
    this._stats = { frames: 0, samples: 0, busyMs: 0 };
  }

  /** 统计：处理过的帧数、产生的行数、平均每帧处理耗时（毫秒）。 */
  get stats() {
    const { frames, samples, busyMs } = this._stats;
    return { frames, samples, avgMs: frames ? busyMs / frames : 0 };
  }

  /**
   * 设置采样区域。
   * @param {number[]|null} roi `[x0, y0, x1, y1]`，相对视频宽高的 0..1 坐标；null 表示没有人脸（停止产生数据）
   * @param {number} [seq] 服务器给出的 ROI 序号，随每批数据回传；省略时沿用上一个
   */
  setRoi(roi, seq) {
    const next = normalizeRoi(roi);
    const prev = this._roi;
    const changed = !next !== !prev || (next && next.some((v, k) => v !== prev[k]));
    if (changed) this._flush(); // 旧 ROI 下的数据单独成批
    if (!next || !prev || movedFar(prev, next)) this._chroma.ref = null;
    this._roi = next;
    if (seq !== undefined) this._seq = Number.isFinite(Number(seq)) ? Number(seq) : null;
  }

  /** 开始采样（重复调用无副作用）。 */
  start() {
    if (this._video || !this.track) return;
    const video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.srcObject = new MediaStream([this.track]);
    this._video = video;
    const play = () => video.play()?.catch?.((err) => this._warn("隐藏的 <video> 无法播放", err));
    play();
    if (typeof video.requestVideoFrameCallback === "function") {
      const onFrame = (now, meta) => {
        if (this._video !== video) return;
        this._frameHandle = video.requestVideoFrameCallback(onFrame);
        this._sample(meta?.captureTime ?? meta?.expectedDisplayTime ?? now);
      };
      this._frameHandle = video.requestVideoFrameCallback(onFrame);
    } else {
      this._pollTimer = setInterval(() => this._sample(performance.now()), FALLBACK_INTERVAL_MS);
    }
    this._batchTimer = setInterval(() => {
      this._flush();
      if (video.paused && this._video === video) play(); // 被浏览器暂停（如页面切到后台）后恢复
    }, this.batchMs);
  }

  /** 停止采样并释放隐藏的 <video>、定时器和帧回调；未交出的数据丢弃。幂等。 */
  stop() {
    const video = this._video;
    this._video = null;
    clearInterval(this._pollTimer);
    clearInterval(this._batchTimer);
    this._pollTimer = null;
    this._batchTimer = null;
    this._pending = [];
    if (video) {
      if (this._frameHandle !== null) video.cancelVideoFrameCallback?.(this._frameHandle);
      video.pause();
      video.srcObject = null;
    }
    this._frameHandle = null;
    this._canvas = null;
    this._ctx = null;
  }

  // ───────────────────────── 内部实现 ─────────────────────────

  /** 处理一帧：截取 ROI、缩小、取皮肤均值，追加一行。 */
  _sample(tMs) {
    const video = this._video;
    const roi = this._roi;
    if (!video || !roi || video.readyState < 2 || !video.videoWidth || !video.videoHeight) return;
    const t = round3(tMs);
    if (!(t > this._lastT) || t < 0) return; // 时间必须非负且严格递增
    const started = performance.now();
    try {
      const vw = video.videoWidth;
      const vh = video.videoHeight;
      const sx = roi[0] * vw;
      const sy = roi[1] * vh;
      const sw = (roi[2] - roi[0]) * vw;
      const sh = (roi[3] - roi[1]) * vh;
      if (sw < 1 || sh < 1) return;
      const scale = Math.min(1, this.maxSide / Math.max(sw, sh));
      const w = Math.max(1, Math.round(sw * scale));
      const h = Math.max(1, Math.round(sh * scale));
      const ctx = this._context(w, h);
      ctx.drawImage(video, sx, sy, sw, sh, 0, 0, w, h);
      const rgb = skinMean(ctx.getImageData(0, 0, w, h).data, w, h, this._chroma);
      this._stats.frames += 1;
      if (!rgb) return;
      this._lastT = t;
      this._stats.samples += 1;
      this._pending.push([t, round3(rgb[0]), round3(rgb[1]), round3(rgb[2])]);
      if (this._pending.length >= MAX_BATCH) this._flush();
    } catch (err) {
      this._warn("采样失败", err);
    } finally {
      this._stats.busyMs += performance.now() - started;
    }
  }

  /** 缩放用的画布（尺寸变化时才调整，避免每帧重新分配）。 */
  _context(w, h) {
    if (!this._ctx) {
      this._canvas = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(w, h) : document.createElement("canvas");
      this._canvas.width = w;
      this._canvas.height = h;
      this._ctx = this._canvas.getContext("2d", { willReadFrequently: true });
    } else if (this._canvas.width !== w || this._canvas.height !== h) {
      this._canvas.width = w;
      this._canvas.height = h;
    }
    return this._ctx;
  }

  /** 交出已缓存的数据（没有数据时不调用回调）；回调抛出的异常不影响采样。 */
  _flush() {
    if (!this._pending.length) return;
    const samples = this._pending;
    this._pending = [];
    try {
      this.onBatch?.(samples, this._seq);
    } catch (err) {
      this._warn("onBatch 回调出错", err);
    }
  }

  _warn(text, err) {
    if (this._warned) return; // 只打印一次，避免每帧刷屏
    this._warned = true;
    console.warn("[proctor]", `心率采样：${text}`, err?.message || err);
  }
}

/** ROI 是否移动了一大段（任一边移动超过框宽/高的 30%）：此时皮肤参照色度需要重新取。 */
function movedFar(prev, next) {
  const dx = ROI_RESET_FRACTION * (prev[2] - prev[0]);
  const dy = ROI_RESET_FRACTION * (prev[3] - prev[1]);
  return (
    Math.abs(next[0] - prev[0]) > dx ||
    Math.abs(next[2] - prev[2]) > dx ||
    Math.abs(next[1] - prev[1]) > dy ||
    Math.abs(next[3] - prev[3]) > dy
  );
}

export default PpgSampler;
