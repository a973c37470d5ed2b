"""浏览器端 rPPG 采样（``dashboard/ppg-sampler.js``）：真实无头 Chromium，不用任何替身。

页面里用画布合成“人脸”：非皮肤色的背景与深色“头发”上画一个皮肤色椭圆，椭圆的 G 通道按 1.2 Hz 正弦起伏
（幅度 1 个灰度级，R/B 各 0.5），每个像素另加随机噪声；画布经 ``captureStream`` 变成视频轨道交给
``PpgSampler``。ROI 故意比椭圆大（含背景和头发），由皮肤掩膜把它们排除。
"""

from __future__ import annotations

import numpy as np
from playwright.sync_api import Browser

from devtools.synthetic import face_frames
from tests.conftest import Stack
from workers.analysis.ppg import SkinSampler

WORKER_PROCESSES = 0  # 只需网关提供 /dashboard/ppg-sampler.js

SKIN = (200.0, 150.0, 120.0)
PULSE_HZ = 1.2
COLLECT_MS = 8000

# 在页面里运行：合成视频 -> PpgSampler，收集各批数据；之后 setRoi(null) 再观察一段时间，最后 stop()
PAGE_SCRIPT = """
async ({ skin, pulseHz, collectMs }) => {
  const { PpgSampler } = await import("/dashboard/ppg-sampler.js");
  const W = 640, H = 480;
  const canvas = document.createElement("canvas");
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext("2d");
  // 椭圆（“脸”）：中心 (320, 250)，半轴 90 x 120；上方一条深色“头发”
  const cx = 320, cy = 250, ax = 90, ay = 120;
  const bx0 = cx - ax, by0 = cy - ay, bw = 2 * ax, bh = 2 * ay;
  const inside = new Uint8Array(bw * bh);
  for (let y = 0; y < bh; y += 1) {
    for (let x = 0; x < bw; x += 1) {
      const u = (x + 0.5 - ax) / ax, v = (y + 0.5 - ay) / ay;
      inside[y * bw + x] = u * u + v * v <= 1 ? 1 : 0;
    }
  }
  const face = ctx.createImageData(bw, bh);
  const draw = () => {
    ctx.fillStyle = "rgb(60, 110, 170)"; // 背景：蓝色墙面
    ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = "rgb(25, 20, 18)"; // 头发：过暗，被亮度门限排除
    ctx.fillRect(cx - 110, by0 - 30, 220, 60);
    const s = Math.sin(2 * Math.PI * pulseHz * performance.now() / 1000);
    const base = [skin[0] + 0.5 * s, skin[1] + 1.0 * s, skin[2] + 0.5 * s];
    const d = face.data;
    for (let k = 0, i = 0; k < inside.length; k += 1, i += 4) {
      if (inside[k]) {
        d[i] = base[0] + (Math.random() - 0.5) * 12;
        d[i + 1] = base[1] + (Math.random() - 0.5) * 12;
        d[i + 2] = base[2] + (Math.random() - 0.5) * 12;
        d[i + 3] = 255;
      } else {
        d[i + 3] = 0;
      }
    }
    // 透明像素不覆盖背景：先画到临时画布，再按 alpha 合成
    faceCtx.putImageData(face, 0, 0);
    ctx.drawImage(faceCanvas, bx0, by0);
  };
  const faceCanvas = new OffscreenCanvas(bw, bh);
  const faceCtx = faceCanvas.getContext("2d");
  draw();
  const drawTimer = setInterval(draw, 1000 / 30);
  const track = canvas.captureStream(15).getVideoTracks()[0];

  const videosBefore = document.querySelectorAll("video").length;
  const batches = [];
  const sampler = new PpgSampler({
    track,
    onBatch: (samples, roiSeq) => batches.push({ at: performance.now(), roiSeq, samples }),
  });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // ROI：椭圆外扩一圈（含背景与头发）
  sampler.setRoi([(cx - 150) / W, (by0 - 40) / H, (cx + 150) / W, (cy + ay + 30) / H], 7);
  sampler.start();
  sampler.start(); // 重复调用无副作用
  const t0 = performance.now();
  await sleep(collectMs);
  const collected = batches.splice(0);

  sampler.setRoi(null, 8); // 没有人脸：setRoi 时先交出旧 ROI 的数据，之后不再产生数据
  const flushedOnNull = batches.splice(0);
  await sleep(2500);
  const afterNull = batches.splice(0);

  const stats = sampler.stats;
  sampler.setRoi([0.2, 0.1, 0.8, 0.95], 9);
  sampler.stop();
  sampler.stop(); // 幂等
  await sleep(1500);
  const afterStop = batches.splice(0);
  clearInterval(drawTimer);
  track.stop();
  return {
    t0, collected, flushedOnNull, afterNull, afterStop, stats,
    videosAdded: document.querySelectorAll("video").length - videosBefore,
  };
}
"""


def _dominant_hz(t_s: np.ndarray, values: np.ndarray) -> float:
    """均匀重采样（15 Hz）后去线性趋势、加汉宁窗、补零 FFT，返回 0.7..3 Hz 内的谱峰频率。"""
    fs = 15.0
    grid = np.arange(t_s[0], t_s[-1], 1.0 / fs)
    x = np.interp(grid, t_s, values)
    x = x - np.polyval(np.polyfit(grid, x, 1), grid)
    nfft = 1 << int(np.ceil(np.log2(len(x) * 16)))
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), nfft))
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    band = (freqs >= 0.7) & (freqs <= 3.0)
    return float(freqs[band][np.argmax(spec[band])])


def test_ppg_sampler_measures_skin_colour_and_pulse_from_a_video_track(stack: Stack, browser: Browser) -> None:
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{stack.base_url}/student-demo")  # 只为取得网关的源，以便 import /dashboard/ppg-sampler.js
    result = page.evaluate(PAGE_SCRIPT, {"skin": list(SKIN), "pulseHz": PULSE_HZ, "collectMs": COLLECT_MS})
    page.close()
    assert errors == []

    batches = result["collected"]
    # 大约每秒一批，每批 1..64 行，回传 ROI 序号
    assert 6 <= len(batches) <= 9, [len(b["samples"]) for b in batches]
    assert all(1 <= len(b["samples"]) <= 64 for b in batches)
    assert all(b["roiSeq"] == 7 for b in batches)
    gaps = np.diff([b["at"] for b in batches])
    assert np.all((gaps > 700) & (gaps < 1300)), gaps

    rows = np.array([row for b in batches for row in b["samples"]], dtype=float)
    assert rows.shape[1] == 4
    t_ms = rows[:, 0]
    assert np.all(np.diff(t_ms) > 0), "时间戳必须严格递增"
    # 时间戳是 performance.now() 时钟上的帧时间：落在采集区间内
    assert result["t0"] - 1000 < t_ms[0] < t_ms[-1] < result["t0"] + COLLECT_MS + 100
    span_s = (t_ms[-1] - t_ms[0]) / 1000
    assert span_s > 6
    assert len(rows) / span_s >= 10, f"每秒只有 {len(rows) / span_s:.1f} 行"
    assert np.all(rows[:, 1:] == np.round(rows[:, 1:], 3))

    # ROI 含背景与头发，掩膜只留下皮肤：均值接近椭圆颜色
    mean_rgb = rows[:, 1:].mean(axis=0)
    assert np.all(np.abs(mean_rgb - np.array(SKIN)) < 6), mean_rgb
    # G 通道的主频就是合成的脉搏频率
    f0 = _dominant_hz(t_ms / 1000, rows[:, 2])
    assert abs(f0 - PULSE_HZ) <= 0.15, f0
    # 脉搏幅度没有被量化或舍入掉：按 1.2 Hz 拟合正弦（含线性趋势），G 的幅度约 1 个灰度级
    t_s = t_ms / 1000 - t_ms[0] / 1000
    basis = np.column_stack(
        [np.sin(2 * np.pi * PULSE_HZ * t_s), np.cos(2 * np.pi * PULSE_HZ * t_s), np.ones_like(t_s), t_s]
    )
    coef, *_ = np.linalg.lstsq(basis, rows[:, 2], rcond=None)
    amplitude = float(np.hypot(coef[0], coef[1]))
    assert 0.6 < amplitude < 1.4, amplitude

    stats = result["stats"]
    assert stats["samples"] >= len(rows)
    rate = len(rows) / span_s
    print(f"\n行/秒 {rate:.1f}，均值 {mean_rgb.round(2)}，G 主频 {f0:.3f} Hz，幅度 {amplitude:.2f}，每帧 {stats['avgMs']:.2f} ms")
    assert stats["avgMs"] < 15, stats  # 单独测约 0.7 ms；这里与合成画面的脚本争用主线程，放宽以免偶发失败

    # setRoi(null)：之前缓存的数据立即成批交出（至多一批），之后不再产生数据；stop() 后也没有
    assert len(result["flushedOnNull"]) <= 1
    if result["flushedOnNull"]:
        assert result["flushedOnNull"][0]["samples"][0][0] > t_ms[-1]
    assert result["afterNull"] == []
    assert result["afterStop"] == []
    assert result["videosAdded"] == 0  # 隐藏的 <video> 不进入页面


def test_browser_skin_mean_matches_the_server_sampler(stack: Stack, browser: Browser) -> None:
    """同一块像素（真实人脸照片的一角，含背景与头发）：浏览器的 ``skinMean`` 与服务器的 ``SkinSampler`` 给出同一个均值。"""
    frame = next(face_frames(1, noise=0.0, motion=False))
    x0, y0 = 290, 90  # 31x31 的小块（< 32 像素，服务器不做 2x2 缩小）：额头、发际与背景都在里面
    patch = frame[y0 : y0 + 31, x0 : x0 + 31]
    server = SkinSampler().sample(patch, (0, 0, 31, 31))
    rgba = np.dstack([patch[..., ::-1], np.full(patch.shape[:2], 255, np.uint8)]).ravel().tolist()
    page = browser.new_page()
    page.goto(f"{stack.base_url}/student-demo")
    client = page.evaluate(
        """async (rgba) => {
          const { skinMean } = await import("/dashboard/ppg-sampler.js");
          return skinMean(new Uint8ClampedArray(rgba), 31, 31, { ref: null });
        }""",
        rgba,
    )
    page.close()
    assert server is not None and client is not None
    # OpenCV 的 YCrCb 取整到整数，浏览器用浮点：只有贴着色度门限的个别像素可能不同
    assert np.abs(np.array(client) - server).max() < 0.5, (client, server)
    plain = patch[..., ::-1].reshape(-1, 3).mean(axis=0)
    assert np.abs(plain - server).max() > 2.0  # 这块里确实有非皮肤像素被排除（否则比较没有意义）
