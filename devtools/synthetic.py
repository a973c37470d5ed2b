"""合成测试/演示画面（纯 numpy）：来自 scikit-image 轮子自带的真实人脸照片，不下载任何数据。

- ``face_frames``：真实人脸（skimage.data.astronaut）在室内背景前，可选小幅头部运动、已知心率的
  脉搏（neurokit2 ``ppg_simulate``，按真实幅度与颜色方向调制皮肤像素）、光照漂移、相机噪声、
  遮住脸下半部的手、第二张脸；
- ``empty_frames``：同一背景前只有一个物体（skimage.data.coffee），没有人脸；
- ``voice_pcm``：类似嗓音的合成音（声门脉冲串经共振峰滤波、按音节起伏，webrtcvad 判为语音），不需要 espeak-ng；
- ``simulate_pulse`` / ``PulseTrack.true_hr``：脉搏波形与按真实心跳时刻计算的窗口心率（评估基准）。
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from skimage import data

# 皮肤中血容量脉搏的颜色方向（归一化 RGB 变化，绿色最强；de Haan & Jeanne 2013 的量级），BGR 顺序
PULSE_DIRECTION_BGR = np.array([0.53, 0.77, 0.33]) / 0.77


@dataclass(frozen=True)
class PulseTrack:
    """脉搏波形（均值 0、峰峰值约 1）及心跳时刻。"""

    times: np.ndarray
    values: np.ndarray
    beat_times: np.ndarray

    def at(self, t: float) -> float:
        return float(np.interp(t, self.times, self.values))

    def true_hr(self, t_end: float, window_s: float = 10.0) -> float | None:
        """[t_end - window_s, t_end] 内心跳的平均心率（bpm）。"""
        beats = self.beat_times[(self.beat_times >= t_end - window_s) & (self.beat_times <= t_end)]
        if len(beats) < 3:
            return None
        return float(60.0 * (len(beats) - 1) / (beats[-1] - beats[0]))


def simulate_pulse(duration_s: float, hr_bpm: float, seed: int = 0, steady: bool = False) -> PulseTrack:
    """neurokit2 的 PPG 波形。默认带真实的心率变异（局部心率在 ±8 bpm 内摆动）；``steady`` 时心率恒定。"""
    import neurokit2 as nk  # 只在生成合成数据时需要

    variability = {"frequency_modulation": 0.0, "ibi_randomness": 0.0} if steady else {}
    rate = 100
    ppg = nk.ppg_simulate(
        duration=int(np.ceil(duration_s)) + 2,
        sampling_rate=rate,
        heart_rate=hr_bpm,
        motion_amplitude=0,
        powerline_amplitude=0,
        drift=0,
        random_state=seed,
        **variability,
    )
    peaks = nk.ppg_findpeaks(ppg, sampling_rate=rate)["PPG_Peaks"]
    values = (ppg - ppg.mean()) / max(1e-9, np.percentile(ppg, 95) - np.percentile(ppg, 5))
    times = np.arange(len(ppg)) / rate
    return PulseTrack(times=times, values=values, beat_times=np.asarray(peaks) / rate)


def _background(width: int, height: int) -> np.ndarray:
    """浅色墙面：竖直亮度渐变 + 一条桌沿。"""
    ramp = np.linspace(170, 120, height, dtype=np.float32)[:, None]
    bg = np.empty((height, width, 3), np.float32)
    bg[..., 0] = ramp * 0.95
    bg[..., 1] = ramp * 1.0
    bg[..., 2] = ramp * 1.05
    bg[int(height * 0.88) :, :] = (60, 75, 95)
    return bg.clip(0, 255).astype(np.uint8)


@lru_cache(maxsize=4)
def _portrait(height: int) -> np.ndarray:
    """astronaut 照片的头肩部分（BGR），缩放到给定高度。"""
    rgb = data.astronaut()[10:280, 120:390]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = height / bgr.shape[0]
    return cv2.resize(bgr, (round(bgr.shape[1] * scale), height), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=4)
def _skin_mask(height: int) -> np.ndarray:
    """肖像中皮肤像素（YCrCb 阈值 + 腐蚀），布尔数组。"""
    ycrcb = cv2.cvtColor(_portrait(height), cv2.COLOR_BGR2YCrCb)
    mask = cv2.inRange(ycrcb, (40, 138, 80), (240, 175, 125))
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
    mask[: int(mask.shape[0] * 0.25)] = 0  # 去掉与肤色相近的头发
    return mask > 0


@lru_cache(maxsize=4)
def _object(height: int) -> np.ndarray:
    bgr = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    scale = height / bgr.shape[0]
    return cv2.resize(bgr, (round(bgr.shape[1] * scale), height), interpolation=cv2.INTER_AREA)


def _paste(canvas: np.ndarray, item: np.ndarray, cx: float, top: int) -> None:
    h, w = item.shape[:2]
    x0 = int(round(cx - w / 2))
    x_start, x_end = max(0, x0), min(canvas.shape[1], x0 + w)
    y_end = min(canvas.shape[0], top + h)
    canvas[top:y_end, x_start:x_end] = item[: y_end - top, x_start - x0 : x_end - x0]


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return frame
    noise = rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return (frame.astype(np.float32) + noise).clip(0, 255).astype(np.uint8)


def _turned(image: np.ndarray, yaw_deg: float) -> np.ndarray:
    """把图像看作贴在竖直圆柱面上（半径为宽度的一半），绕竖轴转过 ``yaw_deg``，正交投影回平面。"""
    h, w = image.shape[:2]
    radius = w / 2.0
    out_x = (np.arange(w, dtype=np.float32) - radius) / radius
    theta = np.arcsin(np.clip(out_x, -1.0, 1.0)) - np.radians(yaw_deg)
    src_x = np.where(np.abs(theta) < np.pi / 2, radius + radius * np.sin(theta), -1.0).astype(np.float32)
    map_x = np.tile(src_x, (h, 1))
    map_y = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w))
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def face_frames(
    count: int,
    fps: float = 15.0,
    size: tuple[int, int] = (640, 360),
    noise: float = 2.0,
    seed: int = 0,
    *,
    motion: bool = True,
    pulse: PulseTrack | None = None,
    pulse_amplitude: float = 0.003,
    drift: float = 0.0,
    cover_lower: bool = False,
    second_face: bool = False,
    yaw_deg: float = 0.0,
) -> Iterator[np.ndarray]:
    """真实人脸；``motion`` 时小幅左右/上下移动（周期约 4 秒）。

    ``pulse_amplitude`` 是绿色通道的脉搏峰峰值（相对亮度，真实皮肤约 0.2–0.4 %）；``drift`` 是
    慢速光照变化的相对幅度（周期 20 秒）；``cover_lower`` 用手色块遮住脸的下半部（鼻尖以下）；
    ``second_face`` 在画面左侧加入第二个人；``yaw_deg`` 把肖像按圆柱面转过这个角度（照片不能真的转头：
    五官挤向一侧，是近似）。
    """
    width, height = size
    rng = np.random.default_rng(seed)
    bg = _background(width, height).astype(np.float32)
    portrait_h = int(height * 0.92)
    portrait = _portrait(portrait_h).astype(np.float32)
    skin = _skin_mask(portrait_h)
    if yaw_deg:
        portrait = _turned(portrait, yaw_deg)
        skin = _turned(skin.astype(np.float32), yaw_deg) > 0.5
    direction = PULSE_DIRECTION_BGR.astype(np.float32)
    other = cv2.resize(_portrait(portrait_h), None, fx=0.8, fy=0.8).astype(np.float32)
    for i in range(count):
        t = i / fps
        frame = bg.copy()
        if second_face:
            _paste(frame, other, width * 0.16, int(height * 0.2))
        person = portrait
        if pulse is not None:
            person = portrait.copy()
            person[skin] *= 1.0 + pulse_amplitude * pulse.at(t) * direction
        if cover_lower:
            person = person.copy()
            ph, pw = person.shape[:2]
            # 脸位于肖像约 x 0.22–0.55、y 0.20–0.60；鼻尖以下到下巴用手色块遮住
            person[int(ph * 0.41) : int(ph * 0.64), int(pw * 0.19) : int(pw * 0.58)] = (95, 140, 205)
        cx = width / 2 + (8 * np.sin(2 * np.pi * t / 4.0) if motion else 0.0)
        top = int(height * 0.08 + (3 * np.sin(2 * np.pi * t / 3.0) if motion else 0.0))
        _paste(frame, person, cx, top)
        if drift:
            frame *= 1.0 + drift * np.sin(2 * np.pi * t / 20.0)
        if noise > 0:
            frame += rng.normal(0.0, noise, frame.shape).astype(np.float32)
        yield frame.clip(0, 255).astype(np.uint8)


def empty_frames(
    count: int, fps: float = 15.0, size: tuple[int, int] = (640, 360), noise: float = 2.0, seed: int = 0
) -> Iterator[np.ndarray]:
    """没有人脸的场景：背景与一只咖啡杯。"""
    width, height = size
    rng = np.random.default_rng(seed)
    frame = _background(width, height)
    _paste(frame, _object(int(height * 0.5)), width / 2, int(height * 0.38))
    for _ in range(count):
        yield _noisy(frame, rng, noise)


def voice_pcm(seconds: float, seed: int = 0, sample_rate: int = 16000, level: float = 0.3) -> np.ndarray:
    """类似嗓音的合成音：基频 150 Hz 上下起伏的声门脉冲串，每 0.25 秒换一组元音共振峰并按音节起伏。
    没有任何语义，只是让语音活动检测（webrtcvad）判为说话；``level`` 为峰值相对满幅。"""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 150 + 20 * np.sin(2 * np.pi * 0.7 * t) + 8 * np.sin(2 * np.pi * 5 * t)
    pulses = (np.diff(np.floor(np.cumsum(f0 / sample_rate)), prepend=0) > 0).astype(np.float64)
    source = lfilter([1.0], [1.0, -0.97], pulses)
    vowels = ((700, 1200, 2600), (300, 2300, 3000), (500, 900, 2400), (400, 1900, 2500))
    syllable = int(0.25 * sample_rate)
    out = np.zeros(n)
    for start in range(0, n, syllable):
        seg = source[start : start + syllable]
        for formant in vowels[rng.integers(len(vowels))]:
            r, theta = np.exp(-np.pi * 80 / sample_rate), 2 * np.pi * formant / sample_rate
            seg = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], seg)
        out[start : start + len(seg)] = seg * np.sin(np.pi * np.linspace(0, 1, len(seg))) ** 0.6
    return (out / max(1e-9, np.abs(out).max()) * level * 32767).astype(np.int16)


def speech_pcm(text: str, voice: str = "zh", sample_rate: int = 16000) -> np.ndarray:
    """用 espeak-ng（Debian 包）合成一段语音，返回 ``sample_rate`` 的单声道 int16 PCM。"""
    import shutil
    import subprocess
    import tempfile
    import wave
    from pathlib import Path

    from scipy.signal import resample_poly

    binary = shutil.which("espeak-ng")
    if binary is None:
        raise RuntimeError("找不到 espeak-ng：请运行 make test（会用 apt-get 安装）")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run([binary, "-v", voice, "-w", str(path), text], check=True, capture_output=True, timeout=30)
        with wave.open(str(path)) as wav:
            rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    resampled = resample_poly(pcm.astype(np.float64), sample_rate, rate)
    return np.clip(resampled, -32768, 32767).astype(np.int16)


def bgr_to_i420(image_bgr: np.ndarray) -> np.ndarray:
    """BGR 画面 -> 解码器输出的 I420 平面（BT.601 有限范围），经 FFmpeg 的 swscale，与摄像头 / 编码器一样
    按邻域平均子采样色度（OpenCV 的 ``COLOR_BGR2YUV_I420`` 只取每 2x2 的左上像素，色度噪声翻倍）。"""
    import av

    return av.VideoFrame.from_ndarray(image_bgr, format="bgr24").reformat(format="yuv420p").to_ndarray()
