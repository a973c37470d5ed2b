"""单路 RTSP 拉流线程（PyAV）。

- 先 TCP 后 UDP（顺序可配），记住上次成功的传输方式，重连时优先使用；
- 低延迟打开参数（nobuffer / low_delay / 极小 probesize），单线程（SLICE）解码，不引入额外帧延迟；
- 缩放到不超过 ``frame_max_width x frame_max_height``，帧保持解码器的 I420 平面（不做整帧颜色转换）；
- 每帧放进“只保留最新一帧”的槽位（分析线程按自己的节奏取走最新的，见 ``pacing``）；
- 有音轨时一并解码，重采样为 16 kHz 单声道 int16 交给 ``on_audio``（音轨出错不影响视频）；
- 断流后指数退避 + 抖动重连，连续失败超过上限后放弃（状态 failed）。
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import av
import numpy as np

from shared.retry import backoff_delay
from shared.settings import Settings

from ..state.rates import RateMeter
from .frames import Frame, FrameSlot

log = logging.getLogger(__name__)

LOW_DELAY_OPTIONS = {
    "fflags": "nobuffer",
    "flags": "low_delay",
    "analyzeduration": "0",
    "probesize": "32",
}


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """保持宽高比缩小到框内（不放大），宽高取偶数以适配 YUV 转换。"""
    scale = min(1.0, max_width / width, max_height / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


AUDIO_RATE = 16000


class Observer(Protocol):
    """记录一次耗时（秒）的对象，如 Prometheus 直方图。"""

    def observe(self, amount: float) -> None: ...


class RtspIngest(threading.Thread):
    """拉流线程。``wake`` （可选）在放入一帧、且这一帧已到分析时间时被置位；
    ``on_frame`` （可选）在本线程里收到每一帧（用于需要逐帧数据的分析，如 rPPG）；
    ``on_audio`` （可选）收到 16 kHz 单声道 int16 PCM 片段。"""

    def __init__(
        self,
        stream_name: str,
        url: str,
        settings: Settings,
        slot: FrameSlot,
        wake: threading.Event | None = None,
        on_frame: Callable[[Frame], None] | None = None,
        on_audio: Callable[[np.ndarray], None] | None = None,
        decode_seconds: Observer | None = None,
    ) -> None:
        super().__init__(name=f"ingest-{stream_name}", daemon=True)
        self.decode_seconds = decode_seconds  # 每个视频包的解码耗时（Prometheus 直方图）
        self.stream_name = stream_name
        self.url = url
        self._password = urlsplit(url).password
        self.settings = settings
        self.slot = slot
        self.wake = wake
        self.on_frame = on_frame
        self.on_audio = on_audio
        self.stop_event = threading.Event()
        self._rng = random.Random()
        self._transports = list(settings.transports)
        # 以下统计由本线程写入，其他线程只读
        self.state = "connecting"
        self.transport: str | None = None
        self.frames_decoded = 0
        self.audio_codec: str | None = None  # 当前连接的音轨编码（无音轨时 None）
        self.audio_samples = 0  # 送出的 16 kHz 样本数
        self.reconnects = 0
        self.last_error: str | None = None
        self.last_frame_at: float | None = None
        self.fps_meter = RateMeter()
        self._had_session = False

    def _redact(self, text: str) -> str:
        """错误信息会进入状态接口与日志：去掉地址里的读取密码。"""
        return text.replace(self._password, "***") if self._password else text

    def stop(self) -> None:
        self.stop_event.set()

    # ---- 主循环 ----
    def run(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            got_frames = self._connect_once()
            if self.stop_event.is_set():
                break
            failures = 0 if got_frames else failures + 1
            if failures >= self.settings.reconnect_max_attempts:
                self.state = "failed"
                log.error("stream %s: giving up after %d failed attempts", self.stream_name, failures)
                break
            self.state = "reconnecting"
            delay = backoff_delay(
                max(1, failures), self.settings.reconnect_base_s, self.settings.reconnect_max_s, self._rng
            )
            log.info("stream %s: reconnecting in %.2fs (%s)", self.stream_name, delay, self.last_error)
            self.stop_event.wait(delay)

    def _connect_once(self) -> bool:
        """依次尝试各传输方式，直到某一方式解码出帧；返回本轮是否解码出帧。"""
        for transport in list(self._transports):
            if self.stop_event.is_set():
                return False
            try:
                container = av.open(
                    self.url,
                    options={"rtsp_transport": transport, **LOW_DELAY_OPTIONS},
                    timeout=(self.settings.rtsp_open_timeout_s, self.settings.rtsp_read_timeout_s),
                )
            except (av.FFmpegError, OSError) as exc:
                self.last_error = self._redact(f"open via {transport}: {exc}")
                log.debug("stream %s: %s", self.stream_name, self.last_error)
                continue
            try:
                got_frames = self._decode(container, transport)
            finally:
                container.close()
            if got_frames:
                # 下次重连优先使用这次成功的传输方式
                self._transports.remove(transport)
                self._transports.insert(0, transport)
                return True
        return False

    def _decode(self, container: av.container.InputContainer, transport: str) -> bool:
        if not container.streams.video:
            self.last_error = "no video track"
            return False
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1  # 默认按核数开解码线程：每路都开，几十路时上千个线程、各占一块内存
        audio = container.streams.audio[0] if self.on_audio is not None and container.streams.audio else None
        self.audio_codec = audio.codec_context.name if audio is not None else None
        resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE) if audio is not None else None
        size: tuple[int, int] | None = None
        got_frames = False
        try:
            for packet in container.demux(*[s for s in (stream, audio) if s is not None]):
                if self.stop_event.is_set():
                    break
                if packet.stream is audio and resampler is not None:
                    self._handle_audio(packet, resampler)
                    continue
                started = time.perf_counter()
                try:
                    frames = packet.decode()
                except av.InvalidDataError as exc:
                    self.last_error = f"decode: {exc}"
                    continue
                if self.decode_seconds is not None:
                    self.decode_seconds.observe(time.perf_counter() - started)
                for frame in frames:
                    if not isinstance(frame, av.VideoFrame):
                        continue
                    if size is None:
                        size = fit_size(
                            frame.width, frame.height, self.settings.frame_max_width, self.settings.frame_max_height
                        )
                    if not got_frames:
                        got_frames = True
                        self.transport = transport
                        self.state = "streaming"
                        if self._had_session:
                            self.reconnects += 1
                        self._had_session = True
                        log.info("stream %s: streaming via %s", self.stream_name, transport)
                    self._handle(frame, size)
        except (av.FFmpegError, OSError) as exc:
            self.last_error = self._redact(f"read via {transport}: {exc}")
        else:
            if not self.stop_event.is_set():
                self.last_error = "stream ended"
        return got_frames

    def _handle_audio(self, packet: av.Packet, resampler: av.AudioResampler) -> None:
        """解码音频包并重采样；坏包只记录，不中断视频。"""
        assert self.on_audio is not None
        try:
            for frame in packet.decode():
                if not isinstance(frame, av.AudioFrame):
                    continue
                for out in resampler.resample(frame):
                    pcm = out.to_ndarray().reshape(-1)
                    self.audio_samples += len(pcm)
                    self.on_audio(pcm)
        except (av.FFmpegError, ValueError) as exc:
            self.last_error = f"audio decode: {exc}"

    def _handle(self, frame: av.VideoFrame, size: tuple[int, int]) -> None:
        now = time.monotonic()
        self.frames_decoded += 1
        self.last_frame_at = now
        self.fps_meter.mark(now)
        planes = frame
        if (frame.width, frame.height) != size or frame.format.name != "yuv420p":
            planes = frame.reformat(width=size[0], height=size[1], format="yuv420p")
        item = Frame(planes.to_ndarray(), frame.time, received_at=now, wall_time=time.time(), key_frame=frame.key_frame)
        if self.on_frame is not None:
            self.on_frame(item)
        if self.slot.put(item) and self.wake is not None:
            self.wake.set()
