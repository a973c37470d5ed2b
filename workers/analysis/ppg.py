"""视频心率（rPPG，POS 算法，Wang et al. 2017）。

- 人脸 ROI（额头到上唇）由 5 个人脸关键点确定，逐帧取其中皮肤像素（按色度判定）的 RGB 均值；
- 样本带显示时间戳，按实际时间重采样到均匀网格（帧率不稳、丢帧都不影响频率估计）；
- POS 投影（1.6 秒滑窗、重叠相加）-> 去趋势 -> 带通 0.7–3.0 Hz（42–180 bpm）；
- 约 10 秒窗口的频谱峰值，抛物线插值得到亚分辨率频率；关键帧间隔规则时排除其谐波频点；
- 信号质量：峰值（含二次谐波）附近能量与带内其余能量之比（SNR，dB），映射到 0..1。
  质量低于阈值或窗口不足时 ``hr_bpm`` 为 None。
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import signal

BAND_HZ = (0.7, 3.0)
POS_WINDOW_S = 1.6
_POS_PROJECTION = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])


@dataclass(frozen=True)
class PpgResult:
    hr_bpm: float | None
    signal_quality: float | None  # 0..1；None 表示样本还不够
    snr_db: float | None
    window_s: float
    source: str | None = None  # 由调用方标注：client（学生端采样）或 video（解码视频）


def face_roi(landmarks: np.ndarray, image_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """由关键点（右眼、左眼、鼻尖、右嘴角、左嘴角）得到把整张脸连同余量都框进来的矩形 (x0, y0, x1, y1)。

    框比脸大：关键点抖动或两次检测之间的头部移动都不会让脸部皮肤移出框外，
    因此“框内全部皮肤像素的均值”对位移几乎不敏感（rPPG 对此极其敏感：脉搏只有约 0.3% 的亮度变化）。
    """
    eye_r, eye_l, _nose, mouth_r, mouth_l = landmarks.astype(np.float64)
    d = float(np.linalg.norm(eye_l - eye_r))
    if d < 6:
        return None
    eye_c = (eye_r + eye_l) / 2
    mouth_y = (mouth_r[1] + mouth_l[1]) / 2
    width, height = image_size
    x0 = max(0, int(round(min(eye_r[0], mouth_r[0]) - 1.0 * d)))
    x1 = min(width, int(round(max(eye_l[0], mouth_l[0]) + 1.0 * d)))
    y0 = max(0, int(round(eye_c[1] - 1.4 * d)))
    y1 = min(height, int(round(mouth_y + 1.0 * d)))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return x0, y0, x1, y1


# BT.601 有限范围 YUV（解码器输出）-> RGB：R,G,B = _YUV_TO_RGB @ (Y-16, U-128, V-128)
_YUV_TO_RGB = np.array([[1.164, 0.0, 1.596], [1.164, -0.392, -0.813], [1.164, 2.017, 0.0]])
_YUV_OFFSET = np.array([16.0, 128.0, 128.0])


class SkinSampler:
    """逐帧取 ROI 内皮肤像素的 RGB 加权均值（二维 Hann 窗加权，见 ``_window``）。

    皮肤由色度判定：与参照色度（YCrCb 的 Cr/Cb）距离在 ``chroma_radius`` 以内、且不过暗/过曝的像素。
    参照色度取 ROI 中部的中位数并做指数平滑，避免逐帧阈值变化让边缘像素反复进出掩膜。
    头发、眉眼、背景、衣服的色度与皮肤不同，进出 ROI 时几乎不影响均值。

    两个入口、同一判定：``sample`` 读 BGR 图像（学生端采样用同一算法，见 dashboard/ppg-sampler.js）；
    ``sample_i420`` 直接读解码器的 I420 平面（工作进程逐帧用它，不做整帧颜色转换）：亮度 2x2 平均到色度的分辨率，
    判定前换算成全范围 YCrCb；RGB 是线性变换，所以先对 YUV 加权平均、再换成 RGB，与逐像素转换后平均相同。
    """

    def __init__(self, chroma_radius: float = 10.0, smoothing: float = 0.05) -> None:
        self.chroma_radius = chroma_radius
        self.smoothing = smoothing
        self._ref: np.ndarray | None = None
        self._weights: np.ndarray | None = None

    def sample(self, image_bgr: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray | None:
        x0, y0, x1, y1 = roi
        patch = image_bgr[y0:y1, x0:x1]
        if patch.shape[0] >= 32 and patch.shape[1] >= 32:
            # 2x2 区域平均：均值几乎不变，像素数减为 1/4，同时起到平滑作用
            patch = cv2.resize(patch, (patch.shape[1] // 2, patch.shape[0] // 2), interpolation=cv2.INTER_AREA)
        ycrcb = cv2.cvtColor(patch, cv2.COLOR_BGR2YCrCb).astype(np.float32)
        weights = self._skin_weights(ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2])
        if weights is None:
            return None
        b, g, r = np.einsum("hw,hwc->c", weights, patch.astype(np.float32)) / weights.sum()
        return np.array([r, g, b], dtype=np.float64)

    def sample_i420(self, i420: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray | None:
        """``i420``：(H*3/2, W) 的 I420 平面（BT.601 有限范围）。"""
        height, width = i420.shape[0] * 2 // 3, i420.shape[1]
        x0, y0, x1, y1 = (v // 2 for v in roi)  # 色度平面上的框
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        luma = cv2.resize(
            i420[2 * y0 : 2 * y1, 2 * x0 : 2 * x1], (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA
        ).astype(np.float32)
        chroma = i420[height:].reshape(2, height // 2, width // 2)  # U 平面、V 平面
        u = chroma[0, y0:y1, x0:x1].astype(np.float32)
        v = chroma[1, y0:y1, x0:x1].astype(np.float32)
        # 有限范围 -> 全范围 YCrCb：与 ``sample`` 用同一组阈值
        cr = (v - 128.0) * (255.0 / 224.0) + 128.0
        cb = (u - 128.0) * (255.0 / 224.0) + 128.0
        weights = self._skin_weights((luma - 16.0) * (255.0 / 219.0), cr, cb)
        if weights is None:
            return None
        total = weights.sum()
        yuv = np.array([np.vdot(weights, luma), np.vdot(weights, u), np.vdot(weights, v)]) / total
        return _YUV_TO_RGB @ (yuv - _YUV_OFFSET)

    def _skin_weights(self, luma: np.ndarray, cr: np.ndarray, cb: np.ndarray) -> np.ndarray | None:
        """全范围 YCrCb（float32）-> 每个像素的权重（Hann 窗 x 皮肤掩膜）；皮肤像素太少时 None。"""
        h, w = luma.shape
        core = (slice(int(h * 0.35), int(h * 0.6)), slice(int(w * 0.3), int(w * 0.7)))
        current = np.array([cr[core].mean(), cb[core].mean()], dtype=np.float64)
        if self._ref is None or np.hypot(*(current - self._ref)) > 2 * self.chroma_radius:
            self._ref = current  # 首帧或换了人/光照突变：重新取参照
        else:
            self._ref += self.smoothing * (current - self._ref)
        ref = self._ref.astype(np.float32)
        dist2 = (cr - ref[0]) ** 2 + (cb - ref[1]) ** 2
        mask = (dist2 <= self.chroma_radius**2) & (luma > 40) & (luma < 245)
        if np.count_nonzero(mask) < 20:
            return None
        return self._window(h, w) * mask

    def _window(self, h: int, w: int) -> np.ndarray:
        """二维 Hann 窗（中心权重 1，边框处 0）：头部移动时从框边进出的皮肤（脖子、发际）权重很小，
        不会把移动的节奏带进皮肤均值（否则运动的谐波会盖过低心率，例如 50 bpm）。"""
        if self._weights is None or self._weights.shape != (h, w):
            self._weights = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
        return self._weights


def pos_signal(rgb: np.ndarray, fs: float) -> np.ndarray:
    """POS：输入 (N, 3) 的 RGB 序列，输出脉搏信号 (N,)（1.6 秒滑窗，重叠相加；向量化实现）。"""
    n = len(rgb)
    win = max(2, int(round(POS_WINDOW_S * fs)))
    out = np.zeros(n)
    if n < win:
        return out
    blocks = np.lib.stride_tricks.sliding_window_view(rgb, win, axis=0)  # (M, 3, win)
    means = blocks.mean(axis=2, keepdims=True)
    valid = np.all(means[..., 0] > 0, axis=1)
    normed = blocks / np.where(means > 0, means, 1.0)
    s = np.einsum("pc,mcw->mpw", _POS_PROJECTION, normed)  # (M, 2, win)
    std0, std1 = s[:, 0].std(axis=1), s[:, 1].std(axis=1)
    alpha = np.where(std1 > 1e-12, std0 / np.where(std1 > 1e-12, std1, 1.0), 0.0)
    h = s[:, 0] + alpha[:, None] * s[:, 1]
    h = (h - h.mean(axis=1, keepdims=True)) * valid[:, None]
    for offset in range(win):  # 重叠相加：按窗内位置累加，循环次数只是窗长
        out[offset : offset + len(h)] += h[:, offset]
    return out


def spectrum_peak(pulse: np.ndarray, fs: float, exclude_hz: tuple[float, ...] = ()) -> tuple[float, float]:
    """带内频谱峰值（Hz，抛物线插值）与 SNR（dB：峰值及其二次谐波 ±0.1Hz 内能量 / 带内其余能量）。

    ``exclude_hz`` 附近 ±0.06 Hz 的频点既不参与找峰也不计入 SNR（编码器关键帧节奏造成的谱线）。
    """
    n = len(pulse)
    nfft = 1 << int(np.ceil(np.log2(n * 8)))
    spec = np.abs(np.fft.rfft(pulse * np.hanning(n), nfft)) ** 2
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    for f in exclude_hz:
        band &= np.abs(freqs - f) > 0.06
    idx = np.flatnonzero(band)
    k = idx[np.argmax(spec[idx])]
    f0 = freqs[k]
    if band[k - 1] and band[k + 1]:
        a, b, c = np.log(spec[k - 1 : k + 2] + 1e-30)
        denom = a - 2 * b + c
        if denom < 0:
            f0 = freqs[k] + 0.5 * (a - c) / denom * (freqs[1] - freqs[0])
    signal_mask = (np.abs(freqs - f0) <= 0.1) | (np.abs(freqs - 2 * f0) <= 0.1)
    sig = spec[band & signal_mask].sum()
    noise = spec[band & ~signal_mask].sum()
    snr_db = 10 * np.log10(max(sig, 1e-30) / max(noise, 1e-30))
    return float(f0), float(snr_db)


def keyframe_harmonics(key_times: list[float], t_end: float) -> tuple[float, ...]:
    """关键帧间隔规则（如每 1 秒一个 I 帧）时，返回其频率在心率带内的各次谐波。

    I 帧处画面质量跳变，随后的 P 帧缓慢漂移，皮肤均值因此带上与 GOP 同周期的锯齿，
    其谱线（例如 1 Hz = 60 bpm）会压过真实脉搏。"""
    if len(key_times) < 3:
        return ()
    gaps = np.diff(key_times)
    period = float(np.median(gaps))
    # 间隔超过 2 秒时各次谐波弱且密，不排除（否则会挖掉心率带的大半）
    if not 0 < period <= 2.0 or np.std(gaps) > 0.1 * period or t_end - key_times[-1] > 2 * period:
        return ()
    base = 1.0 / period
    return tuple(base * k for k in range(1, int(BAND_HZ[1] / base) + 2) if BAND_HZ[0] - 0.1 <= base * k <= BAND_HZ[1] + 0.1)


def quality_from_snr(snr_db: float) -> float:
    """SNR（dB）-> 0..1：-3 dB 以下为 0，+6 dB 以上为 1，其间线性。

    标定（python -m devtools.bench accuracy）：无脉搏片段 SNR 中位约 -4.5 dB、最高约 -0.5 dB（质量 < 0.3）；
    有脉搏片段中位 +1.5..+4 dB。
    """
    return float(np.clip((snr_db + 3.0) / 9.0, 0.0, 1.0))


class RppgEstimator:
    """一路流的 rPPG 状态。``add`` 可在拉流线程调用，``estimate`` 在分析线程调用（内部加锁）。"""

    def __init__(
        self,
        window_s: float = 10.0,
        min_window_s: float = 6.0,
        min_quality: float = 0.4,
        max_gap_s: float = 1.0,
    ) -> None:
        self.window_s = window_s
        self.min_window_s = min_window_s
        self.min_quality = min_quality
        self.max_gap_s = max_gap_s
        self._lock = threading.Lock()
        self._t: deque[float] = deque()
        self._rgb: deque[np.ndarray] = deque()
        self._keys: deque[float] = deque()  # 关键帧的时间戳

    def add(self, t_s: float, rgb: np.ndarray | None, key_frame: bool = False) -> None:
        """``rgb`` 为 None 表示这一帧没有可用的皮肤样本（仍记录关键帧时刻）。"""
        with self._lock:
            last = self._t[-1] if self._t else (self._keys[-1] if self._keys else None)
            if last is not None and (t_s <= last or t_s - last > self.max_gap_s):
                # 时间戳回退（重连）或长时间中断：重新积累
                self._t.clear()
                self._rgb.clear()
                self._keys.clear()
            if key_frame:
                self._keys.append(t_s)
            if rgb is not None:
                self._t.append(t_s)
                self._rgb.append(rgb)
            while self._t and t_s - self._t[0] > self.window_s:
                self._t.popleft()
                self._rgb.popleft()
            while self._keys and t_s - self._keys[0] > self.window_s:
                self._keys.popleft()

    def estimate(self) -> PpgResult:
        with self._lock:
            t = np.array(self._t)
            rgb = np.array(self._rgb)
            keys = list(self._keys)
        span = float(t[-1] - t[0]) if len(t) > 1 else 0.0
        if span < self.min_window_s or len(t) < 8 * span * 0.5:
            return PpgResult(hr_bpm=None, signal_quality=None, snr_db=None, window_s=round(span, 2))
        fs = float(np.clip(round((len(t) - 1) / span), 8, 30))
        grid = np.arange(t[0], t[-1], 1.0 / fs)
        uniform = np.column_stack([np.interp(grid, t, rgb[:, c]) for c in range(3)])
        pulse = signal.detrend(pos_signal(uniform, fs))
        sos = signal.butter(3, BAND_HZ, btype="bandpass", fs=fs, output="sos")
        pulse = signal.sosfiltfilt(sos, pulse)
        f0, snr_db = spectrum_peak(pulse, fs, keyframe_harmonics(keys, float(t[-1])))
        quality = quality_from_snr(snr_db)
        hr = round(f0 * 60.0, 1) if quality >= self.min_quality else None
        return PpgResult(hr_bpm=hr, signal_quality=round(quality, 3), snr_db=round(snr_db, 2), window_s=round(span, 2))


class PulseMonitor:
    """把人脸位置、逐帧采样与估计组合起来（工作进程与基准共用同一条路径）。

    - 分析线程每次检测到人脸后调用 ``set_face``（无人脸时 ``clear_face``）；
    - 拉流线程对每个解码帧调用 ``add_frame``（用最近一次的人脸框采样）；
    - ``estimate`` 返回当前心率与质量。
    """

    def __init__(self, estimator: RppgEstimator | None = None, roi_tolerance: float = 0.15) -> None:
        self.estimator = estimator or RppgEstimator()
        self.roi_tolerance = roi_tolerance
        self.sampler = SkinSampler()
        self._roi: tuple[int, int, int, int] | None = None
        self._lock = threading.Lock()

    def set_face(self, landmarks: np.ndarray, image_size: tuple[int, int]) -> None:
        """更新采样框。框比脸大，所以只在脸移动超过框宽的 ``roi_tolerance``（15%）时才移动框：
        检测结果的逐帧抖动不会变成采样均值的噪声。"""
        roi = face_roi(landmarks, image_size)
        with self._lock:
            if roi is None or self._roi is None:
                self._roi = roi
                return
            tolerance = self.roi_tolerance * (roi[2] - roi[0])
            if max(abs(a - b) for a, b in zip(roi, self._roi)) > tolerance:
                self._roi = roi

    @property
    def roi(self) -> tuple[int, int, int, int] | None:
        """当前采样框（像素坐标）；没有人脸时 None。"""
        with self._lock:
            return self._roi

    def clear_face(self) -> None:
        """停止采样；中断超过估计器的 ``max_gap_s`` 后历史自动作废。"""
        with self._lock:
            self._roi = None

    def add_frame(self, t_s: float, i420: np.ndarray, key_frame: bool = False) -> None:
        """解码器的一帧（I420 平面，见 ``SkinSampler.sample_i420``）。"""
        with self._lock:
            roi = self._roi
        rgb = None if roi is None else self.sampler.sample_i420(i420, roi)
        if rgb is not None or key_frame:
            self.estimator.add(t_s, rgb, key_frame)

    def estimate(self) -> PpgResult:
        return self.estimator.estimate()
