"""合成测试/演示画面（纯 numpy）：来自 scikit-image 轮子自带的真实人脸照片，不下载任何数据。

- ``face_frames``：真实人脸（skimage.data.astronaut）在室内背景前，可选小幅头部运动、已知心率的
  脉搏（neurokit2 ``ppg_simulate``，按真实幅度与颜色方向调制皮肤像素）、光照漂移、相机噪声、
  遮住脸下半部的手、第二张脸；
- ``empty_frames``：同一背景前只有一个物体（skimage.data.coffee），没有人脸；
- ``voice_pcm``：类似嗓音的合成音（声门脉冲串经共振峰滤波、按音节起伏，webrtcvad 判为语音），不需要 espeak-ng；
- ``simulate_pulse`` / ``PulseTrack.true_hr``：脉搏波形与按真实心跳时刻计算的窗口心率（评估基准）。
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
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


# 可用的考生照片：skimage 的 astronaut 与 insightface 轮子 t1.jpg 里的六个人
PEOPLE = ("astronaut", *(f"t1-{i}" for i in range(6)))


def _group_photo() -> np.ndarray:
    """insightface 轮子自带的六人合影 t1.jpg（BGR）。"""
    from workers.analysis.head_pose import insightface_data

    path = insightface_data("images", "t1.jpg")
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


@lru_cache(maxsize=8)
def _portrait(height: int, person: str = "astronaut") -> np.ndarray:
    """一个人的头肩部分（BGR），缩放到给定高度。``person`` 见 :data:`PEOPLE`。"""
    if person == "astronaut":
        bgr = cv2.cvtColor(data.astronaut()[10:280, 120:390], cv2.COLOR_RGB2BGR)
    else:
        from workers.analysis.face import FaceDetector

        photo = _group_photo()
        faces = sorted(FaceDetector(detect_width=1280).detect(photo).faces, key=lambda f: f.box[0])
        x, y, w, h = faces[int(person.removeprefix("t1-"))].box
        side = 2.5 * w  # 与 astronaut 肖像里脸的比例相近（脸宽约占 0.4）
        cx, cy = x + w / 2, y + 0.75 * h
        x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
        bgr = photo[y0 : y0 + round(side), x0 : x0 + round(side)]
    scale = height / bgr.shape[0]
    # astronaut 一直按 INTER_AREA 缩放：心率的测试与基准的数字都是在这样的画面上量的（INTER_CUBIC 更锐，纹理更强）
    interpolation = cv2.INTER_AREA if person == "astronaut" else cv2.INTER_CUBIC
    return cv2.resize(bgr, (round(bgr.shape[1] * scale), height), interpolation=interpolation)


def id_photo(person: str = "astronaut", height: int = 360, quality: int = 90) -> bytes:
    """证件照式的参考照片（``create_session`` 的 ``reference_photo``）：astronaut 是 skimage 的原图整幅（512x512，
    与片段里的肖像取景、大小、背景都不同），其余的人是 t1.jpg 里的肖像；JPEG 字节。"""
    if person == "astronaut":
        image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    else:
        image = _portrait(height, person)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return jpeg.tobytes()


@lru_cache(maxsize=8)
def _skin_mask(height: int, person: str = "astronaut") -> np.ndarray:
    """肖像中皮肤像素（YCrCb 阈值 + 腐蚀），布尔数组。"""
    ycrcb = cv2.cvtColor(_portrait(height, person), cv2.COLOR_BGR2YCrCb)
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


@lru_cache(maxsize=8)
def _portrait_landmarks(height: int, person: str = "astronaut") -> np.ndarray:
    """肖像上的 68 个关键点（与工作进程同一个检测器与预测器）。"""
    from workers.analysis.face import FaceDetector
    from workers.analysis.landmarks import FaceLandmarker

    portrait = _portrait(height, person)
    gray = cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY)
    return FaceLandmarker().locate(gray, FaceDetector().detect(portrait).faces[0]).astype(np.float64)


def _glasses(portrait: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """在眼睛周围画一副深色细框眼镜（两个镜框加鼻梁）。"""
    out = portrait.copy()
    eye_dist = float(np.linalg.norm(marks[45] - marks[36]))
    thickness = max(2, round(eye_dist / 30))
    centers = [marks[36:42].mean(axis=0), marks[42:48].mean(axis=0)]
    axes = (round(eye_dist * 0.24), round(eye_dist * 0.17))
    for c in centers:
        cv2.ellipse(out, (round(c[0]), round(c[1])), axes, 0, 0, 360, (30, 30, 30), thickness, cv2.LINE_AA)
    inner = [(round(centers[0][0] + axes[0]), round(centers[0][1])), (round(centers[1][0] - axes[0]), round(centers[1][1]))]
    cv2.line(out, inner[0], inner[1], (30, 30, 30), thickness, cv2.LINE_AA)
    return out


@lru_cache(maxsize=8)
def _face_depth(height: int, person: str = "astronaut") -> tuple[np.ndarray, tuple[float, float]]:
    """肖像每个像素离相机的“高度”（像素单位，鼻尖 0、越靠后越负）与转动中心：68 个关键点处取 3-D 平均人脸的深度
    （按两者的尺度换算），额头、头发与头的轮廓外再加几圈控制点，薄板样条插值成光滑的面（Hassner 等人
    “Effective face frontalization” 用一个通用 3-D 人脸给照片换姿态，这里同理）。"""
    from scipy.interpolate import RBFInterpolator

    from workers.analysis.head_pose import mean_face_68

    portrait = _portrait(height, person)
    marks = _portrait_landmarks(height, person)
    mean = mean_face_68()
    scale = np.sqrt(((marks - marks.mean(0)) ** 2).sum() / ((mean[:, :2] - mean[:, :2].mean(0)) ** 2).sum())
    points, heights = [*marks], [*(-mean[:, 2] * scale)]
    half = (marks[16, 0] - marks[0, 0]) / 2  # 半个脸宽
    cx, brow_y = (marks[36, 0] + marks[45, 0]) / 2, (marks[19, 1] + marks[24, 1]) / 2
    # 额头与头顶两圈：正上方在眉后不远，往两侧逐渐退到与脸颊轮廓（平均人脸上约 1.5 个半脸宽）同深
    for angle in np.linspace(-0.95 * np.pi, -0.05 * np.pi, 9):
        side = np.cos(angle) ** 2
        for ring, top, sides in ((1.0, 0.45, 1.5), (1.35, 0.9, 1.8)):
            points.append((cx + ring * 1.05 * half * np.cos(angle), brow_y + ring * 1.26 * half * np.sin(angle)))
            heights.append(-(top + (sides - top) * side) * half)
    for angle in np.linspace(0, 2 * np.pi, 24, endpoint=False):  # 头的外轮廓：在一切之后
        points.append((cx + 1.7 * half * np.cos(angle), brow_y + 0.3 * half + 1.9 * half * np.sin(angle)))
        heights.append(-2.0 * half)
    surface = RBFInterpolator(np.array(points), np.array(heights), kernel="thin_plate_spline", smoothing=1.0)
    yy, xx = np.mgrid[0 : portrait.shape[0], 0 : portrait.shape[1]]
    depth = surface(np.c_[xx.ravel(), yy.ravel()]).reshape(portrait.shape[:2])
    return np.maximum(depth, -2.0 * half).astype(np.float32), (float(cx), float(brow_y + 0.3 * half))


def _posed(
    image: np.ndarray, yaw_deg: float, pitch_deg: float, person: str = "astronaut", supersample: int = 3
) -> np.ndarray:
    """把肖像贴在 :func:`_face_depth` 的面上，转到给定姿态（与 :mod:`workers.analysis.head_pose` 同一约定：
    yaw > 0 鼻尖转向画面左侧，pitch < 0 低头），正交投影回原大小：逐像素（超采样）前向投射，按深度遮挡，空洞补齐。"""
    h, w = image.shape[:2]
    depth, (cx, cy) = _face_depth(h, person)
    big = cv2.resize(image, (w * supersample, h * supersample), interpolation=cv2.INTER_LINEAR)
    z = cv2.resize(depth, (w * supersample, h * supersample), interpolation=cv2.INTER_LINEAR)
    yy, xx = np.mgrid[0 : h * supersample, 0 : w * supersample].astype(np.float32) / supersample
    x, y = xx - cx, yy - cy
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    x1, z1 = x * np.cos(yaw) - z * np.sin(yaw), x * np.sin(yaw) + z * np.cos(yaw)
    y2, z2 = y * np.cos(pitch) - z1 * np.sin(pitch), y * np.sin(pitch) + z1 * np.cos(pitch)
    ox, oy = np.round(x1 + cx).astype(np.int32), np.round(y2 + cy).astype(np.int32)
    inside = (ox >= 0) & (ox < w) & (oy >= 0) & (oy < h)
    order = np.argsort(z2[inside], kind="stable")  # 由远及近写入：近处的覆盖远处的
    out = np.zeros_like(image)
    covered = np.zeros((h, w), np.uint8)
    rows, cols = oy[inside][order], ox[inside][order]
    out[rows, cols] = big[inside][order]
    covered[rows, cols] = 1
    holes = 1 - covered
    if out.ndim == 2:
        return cv2.inpaint(out.astype(np.uint8), holes, 3, cv2.INPAINT_TELEA)
    return cv2.inpaint(out.clip(0, 255).astype(np.uint8), holes, 3, cv2.INPAINT_TELEA)


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
    pitch_deg: float = 0.0,
    center_x: float = 0.5,
    person: str = "astronaut",
    glasses: bool = False,
) -> Iterator[np.ndarray]:
    """真实人脸；``motion`` 时小幅左右/上下移动（周期约 4 秒）。

    ``pulse_amplitude`` 是绿色通道的脉搏峰峰值（相对亮度，真实皮肤约 0.2–0.4 %）；``drift`` 是
    慢速光照变化的相对幅度（周期 20 秒）；``cover_lower`` 用手色块遮住脸的下半部（鼻尖以下）；
    ``second_face`` 在画面左侧加入第二个人；``yaw_deg`` / ``pitch_deg`` 把头转到这个姿态（照片贴在 3-D 平均人脸上
    转动，见 :func:`_posed`）；``center_x``：人在画面中的水平位置（画面宽度的比例）；``person``：哪个人（:data:`PEOPLE`，
    ``cover_lower`` 的手的位置按 astronaut 取）；``glasses``：戴一副深色细框眼镜。
    """
    width, height = size
    rng = np.random.default_rng(seed)
    bg = _background(width, height).astype(np.float32)
    portrait_h = int(height * 0.92)
    portrait = _portrait(portrait_h, person).astype(np.float32)
    skin = _skin_mask(portrait_h, person)
    if glasses:
        portrait = _glasses(portrait, _portrait_landmarks(portrait_h, person)).astype(np.float32)
    if yaw_deg or pitch_deg:
        portrait = _posed(portrait, yaw_deg, pitch_deg, person).astype(np.float32)
        skin = _posed(skin.astype(np.uint8) * 255, yaw_deg, pitch_deg, person) > 127
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
        cx = width * center_x + (8 * np.sin(2 * np.pi * t / 4.0) if motion else 0.0)
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


def h264_roundtrip(frames: Iterable[np.ndarray], fps: float = 15.0, crf: int = 28) -> list[np.ndarray]:
    """画面经 H.264 编码再解码（libx264，``crf`` 越大压缩越狠；摄像头推流的码率下 23–30 常见），得到有压缩失真的画面。"""
    import av

    frames = list(frames)
    height, width = frames[0].shape[:2]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, round(fps))
    encoder.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
    decoder = av.CodecContext.create("h264", "r")
    out: list[np.ndarray] = []
    for i, image in enumerate([*frames, None]):
        if image is None:
            packets = encoder.encode(None)
        else:
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            frame.pts = i
            packets = encoder.encode(frame)
        for packet in packets:
            out.extend(f.to_ndarray(format="bgr24") for f in decoder.decode(packet))
    out.extend(f.to_ndarray(format="bgr24") for f in decoder.decode(None))
    return out
