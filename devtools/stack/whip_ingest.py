"""WHIP 推流端点（基于 aiortc，真实的 WebRTC 协议栈）：``make run`` 的嵌入式媒体入口，也是测试与基准里 MediaMTX 的替身。

MediaMTX 在这台机器上没有可用的包；这个进程按 MediaMTX v1.20.1 的行为实现 WHIP 推流的 HTTP 接口（生产环境的
compose 部署照常用 MediaMTX）：

- ``POST /{path}/whip``：可选先按 ``authMethod: http`` 的格式调用 ``--auth-url`` 鉴权（非 2xx -> 401）；
  offer 必须恰好一个 ``m=video``、至多一个 ``m=audio``（否则 406）；应答 201 + answer SDP、
  ``Location: /{path}/whip/{secret}``、``ETag``。收到的音视频帧按会话计数。
- ``PATCH /{path}/whip/{secret}``：trickle ICE（RFC 8840 片段），204；未知会话 404。
- ``DELETE /{path}/whip/{secret}``：关闭连接，200；未知会话 404。
- ``--relay-rtsp BASE``：把每路推流的视频（重新编码为 H.264）与音频（有音轨时，重新编码为 Opus）推到
  ``BASE/<路径>``，像 MediaMTX 一样让工作进程经 RTSP 读到学生端的画面与声音（RTSP 服务由 rtsp-server-perl 充当）；
  ``--hook-url URL``：转推开始、结束时像 MediaMTX 的 ``runOnReady`` / ``runOnNotReady`` 一样
  ``POST URL?path=<路径>&event=available|unavailable``（网关据此开始、停止分析）。
- 测试用控制接口：``GET /_standin/stats``、``POST /_standin/mode``（``ok`` / ``error500``）、
  ``POST /_standin/drop``（服务端关闭某路径的连接，模拟媒体故障）。
- 基准用：``--record FILE`` 把第一路视频解码后的帧无损（FFV1）写入 FILE，各帧的接收时刻写入 FILE.times.json；
  ``GET /_standin/publisher?path=&kbps=`` 是一个最小的浏览器推流页（H.264 优先、码率上限 kbps），
  用来测量浏览器编码器对画面的影响（见 devtools/bench/browser.py）。

命令行：``python -m devtools.stack.whip_ingest --host 127.0.0.1 --port PORT [--auth-url URL] [--mode ok|error500]
[--record FILE] [--relay-rtsp BASE] [--hook-url URL]``。:class:`WhipStandin` 在子进程里启停它。
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
from fastapi import FastAPI, Request, Response

from devtools.stack.servers import require_binary

log = logging.getLogger("whip_standin")
REPO_ROOT = Path(__file__).resolve().parents[2]


class Session:
    """一个 WHIP 推流会话（一条 RTCPeerConnection）及其统计。"""

    def __init__(self, path: str, secret: str, pc) -> None:
        self.path, self.secret, self.pc = path, secret, pc
        self.video_frames = self.audio_frames = self.patches = 0
        self.video_codec: str | None = None
        self.deleted = self.closed_by_peer = self.closing = False
        self.tasks: list[asyncio.Task] = []
        self.bundle: list[str] = []  # offer 里 a=group:BUNDLE 的 mid 列表

    def stats(self) -> dict:
        keys = ("path", "secret", "video_frames", "audio_frames", "video_codec", "patches", "deleted", "closed_by_peer")
        return {**{k: getattr(self, k) for k in keys},
                "connection_state": self.pc.connectionState, "ice_state": self.pc.iceConnectionState}

    async def consume(self, track, recorder: "FrameRecorder | None" = None, relay: "RtspRelay | None" = None) -> None:
        """不停地取帧并计数（需要时录下视频帧、转推到 RTSP），直到轨道结束；视频轨结束时关闭转推。"""
        try:
            with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
                while True:
                    frame = await track.recv()
                    if track.kind == "video":
                        self.video_frames += 1
                        if recorder is not None:
                            recorder.write(frame)
                        if relay is not None:
                            await relay.write(frame)
                    else:
                        self.audio_frames += 1
                        if relay is not None:
                            await relay.write_audio(frame)
        finally:
            if relay is not None and track.kind == "video":
                await relay.close()

    async def close(self) -> None:
        self.closing = True
        await self.pc.close()
        for t in self.tasks:
            t.cancel()


class FrameRecorder:
    """把收到的视频帧无损写入 FFV1/MKV（逐帧编号），每帧的接收时刻（秒，从 0 起）另存为 ``<文件>.times.json``。"""

    def __init__(self, path: str) -> None:
        self.path = path
        self.container = None
        self.stream = None
        self.times: list[float] = []

    def write(self, frame) -> None:
        import av

        if self.container is None:
            self.container = av.open(self.path, "w")
            self.stream = self.container.add_stream("ffv1", rate=15)
            self.stream.width, self.stream.height = frame.width, frame.height
            self.stream.pix_fmt = "yuv420p"
        out = frame.reformat(width=self.stream.width, height=self.stream.height, format="yuv420p")
        out.pts = len(self.times)
        self.times.append(time.monotonic())  # 接收时刻（本机回环，抖动为毫秒级）
        for packet in self.stream.encode(out):
            self.container.mux(packet)

    def close(self) -> None:
        if self.container is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            self.container = None
            start = self.times[0] if self.times else 0.0
            Path(self.path + ".times.json").write_text(json.dumps([round(t - start, 4) for t in self.times]))


class RtspRelay:
    """把收到的视频帧经 FFmpeg（x264，1 Mbit/s）推到 RTSP 地址；首帧决定分辨率，之后的帧缩放到同一尺寸。
    ``audio``（推流里有音轨时置为 True）时音频帧（重采样为 48 kHz 单声道）经另一条管道进同一个 FFmpeg，编码为 Opus
    （与 MediaMTX 转出的相同）；两路都按到达时刻打时间戳，浏览器少发了视频帧也不会让声音越拖越晚；音频断了时视频
    至多多等 ``MAX_INTERLEAVE_S``。视频开始之前到达的音频丢弃。
    推出一秒的帧之后调用 ``notify(True)``（流在 RTSP 服务器上可读了），关闭时 ``notify(False)``。
    FFmpeg 退出（RTSP 服务器拒绝了 RECORD、连接断开）时按退避重新启动，至多 ``MAX_RESTARTS`` 次；等待期间的帧丢弃。"""

    FPS = 15
    AUDIO_RATE = 48000
    MAX_INTERLEAVE_S = 0.5
    MAX_RESTARTS = 5

    def __init__(self, url: str, notify=None, audio: bool = False) -> None:
        self.url = url
        self.notify = notify
        self.audio = audio
        self.proc: asyncio.subprocess.Process | None = None
        self.audio_pipe: asyncio.StreamWriter | None = None
        self.resampler = None
        self.size: tuple[int, int] | None = None
        self.failed = False
        self.frames = 0
        self.restarts = 0
        self.retry_at = 0.0

    async def _start_ffmpeg(self) -> None:
        assert self.size is not None
        audio_in: list[str] = []
        audio_out: list[str] = []
        read_fd = write_fd = None
        if self.audio:
            read_fd, write_fd = os.pipe()
            audio_in = ["-use_wallclock_as_timestamps", "1", "-f", "s16le", "-ar", str(self.AUDIO_RATE), "-ac", "1",
                        "-i", f"pipe:{read_fd}"]
            audio_out = ["-map", "1:a", "-af", "aresample=async=1000", "-c:a", "libopus", "-b:a", "32k",
                         "-max_interleave_delta", str(int(self.MAX_INTERLEAVE_S * 1e6))]
        try:
            self.proc = await asyncio.create_subprocess_exec(
                require_binary("ffmpeg"), "-nostdin", "-loglevel", "error",
                "-use_wallclock_as_timestamps", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                "-s", f"{self.size[0]}x{self.size[1]}", "-framerate", str(self.FPS), "-i", "-", *audio_in,
                "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(self.FPS),
                "-b:v", "1M", "-pix_fmt", "yuv420p", *audio_out, "-f", "rtsp", self.url,
                stdin=asyncio.subprocess.PIPE, pass_fds=(read_fd,) if read_fd is not None else (),
            )  # fmt: skip
        finally:
            if read_fd is not None:
                os.close(read_fd)
        if write_fd is not None:
            loop = asyncio.get_running_loop()
            transport, protocol = await loop.connect_write_pipe(
                asyncio.streams.FlowControlMixin, os.fdopen(write_fd, "wb", buffering=0)
            )
            self.audio_pipe = asyncio.StreamWriter(transport, protocol, None, loop)
            self.audio_pipe.write(bytes(2 * self.AUDIO_RATE // 10))  # 0.1 s 静音：FFmpeg 打开音频输入时要先读到数据

    async def write(self, frame) -> None:
        if self.failed or time.monotonic() < self.retry_at:
            return
        if self.proc is None:
            if self.size is None:
                self.size = (frame.width - frame.width % 2, frame.height - frame.height % 2)
            await self._start_ffmpeg()
        assert self.proc is not None and self.size is not None
        width, height = self.size
        image = frame.reformat(width=width, height=height, format="yuv420p").to_ndarray()
        try:
            self.proc.stdin.write(image.tobytes())
            await asyncio.wait_for(self.proc.stdin.drain(), timeout=5)
        except (TimeoutError, BrokenPipeError, ConnectionResetError) as e:
            await self._stop_ffmpeg()
            self.restarts += 1
            self.failed = self.restarts > self.MAX_RESTARTS
            self.retry_at = time.monotonic() + min(8.0, 0.5 * 2 ** (self.restarts - 1))
            log.warning("转推 %s 失败: %r（%s）", self.url, e, "放弃" if self.failed else f"第 {self.restarts} 次重试")
            return
        self.frames += 1
        if self.frames == self.FPS and self.notify is not None:
            await self.notify(True)

    async def write_audio(self, frame) -> None:
        """音频帧 -> 48 kHz 单声道 s16 -> FFmpeg 的音频管道（FFmpeg 还没起来或正在重启时丢弃）。"""
        pipe = self.audio_pipe
        if pipe is None:
            return
        import av

        if self.resampler is None:
            self.resampler = av.AudioResampler(format="s16", layout="mono", rate=self.AUDIO_RATE)
        pcm = b"".join(out.to_ndarray().tobytes() for out in self.resampler.resample(frame))
        try:
            pipe.write(pcm)
            await asyncio.wait_for(pipe.drain(), timeout=5)
        except (TimeoutError, BrokenPipeError, ConnectionResetError) as e:
            log.warning("转推 %s 的音频写入失败: %r", self.url, e)  # 视频那边会发现 FFmpeg 退出并重启

    async def close(self) -> None:
        await self._stop_ffmpeg()
        if self.frames >= self.FPS and self.notify is not None:
            await self.notify(False)

    async def _stop_ffmpeg(self) -> None:
        proc, self.proc = self.proc, None
        pipe, self.audio_pipe = self.audio_pipe, None
        if pipe is not None:
            with contextlib.suppress(Exception):
                pipe.close()
        if proc is None:
            return
        with contextlib.suppress(Exception):
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=3)
        except TimeoutError:
            proc.kill()
            await proc.wait()


PUBLISHER_PAGE = """<!doctype html><meta charset="utf-8"><title>WHIP 推流（基准）</title>
<script type="module">
const q = new URLSearchParams(location.search);
const stream = await navigator.mediaDevices.getUserMedia(
  {video: {width: 640, height: 480, frameRate: 15}, audio: false});
const pc = new RTCPeerConnection({iceServers: []});
const tr = pc.addTransceiver(stream.getVideoTracks()[0], {direction: "sendonly"});
const codecs = RTCRtpSender.getCapabilities("video").codecs;
const rank = (c) => (c.mimeType === "video/H264" ? 0 : c.mimeType === "video/VP8" ? 1 : 2);
tr.setCodecPreferences([...codecs].sort((a, b) => rank(a) - rank(b)));
const params = tr.sender.getParameters();
params.encodings = [{maxBitrate: Number(q.get("kbps") || 1500) * 1000, maxFramerate: 15}];
await tr.sender.setParameters(params);
await pc.setLocalDescription(await pc.createOffer());
await new Promise((ok) => {
  if (pc.iceGatheringState === "complete") ok();
  pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok();
});
const resp = await fetch(`/${q.get("path") || "bench"}/whip`,
  {method: "POST", headers: {"Content-Type": "application/sdp"}, body: pc.localDescription.sdp});
await pc.setRemoteDescription({type: "answer", sdp: await resp.text()});
pc.onconnectionstatechange = () => { document.body.dataset.state = pc.connectionState; };
</script>"""


def _video_codec(answer_sdp: str) -> str | None:
    """从 answer 的 m=video 行取第一个载荷类型对应的编码名。"""
    pt = None
    for line in answer_sdp.splitlines():
        if line.startswith("m="):
            parts = line.split()
            pt = parts[3] if line.startswith("m=video") and len(parts) > 3 else None
        elif pt and line.startswith(f"a=rtpmap:{pt} "):
            return line.split()[1].split("/")[0]
    return None


def create_app(auth_url: str | None = None, mode: str = "ok", record: str | None = None, relay_rtsp: str | None = None,
               hook_url: str | None = None):
    state = {"posts": 0, "mode": mode}

    def notifier(path: str):
        if not hook_url:
            return None

        async def notify(available: bool) -> None:
            params = {"path": path, "event": "available" if available else "unavailable"}
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    await client.post(hook_url, params=params)
            except httpx.HTTPError as e:
                log.warning("路径钩子 %s 调用失败: %s", params, e)

        return notify
    sessions: dict[str, Session] = {}
    recorder = FrameRecorder(record) if record else None

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        log.info("关闭 %d 个会话", len(sessions))
        await asyncio.gather(*(s.close() for s in sessions.values()), return_exceptions=True)
        if recorder is not None:
            recorder.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/_standin/publisher")
    async def publisher():
        return Response(PUBLISHER_PAGE, media_type="text/html")

    async def authorize(request: Request, path: str) -> bool:
        auth = request.headers.get("authorization", "")
        body = {
            "ip": request.client.host if request.client else "", "user": "", "password": "",
            "token": auth[7:] if auth.lower().startswith("bearer ") else "",
            "action": "publish", "path": path, "protocol": "webrtc", "id": str(uuid.uuid4()),
            "query": request.url.query, "userAgent": request.headers.get("user-agent", ""),
        }
        try:
            async with httpx.AsyncClient(timeout=3.0) as client:
                r = await client.post(auth_url, json=body)
            return r.is_success
        except httpx.HTTPError as e:
            log.warning("鉴权请求失败: %s", e)
            return False

    @app.get("/_standin/stats")
    async def stats():
        return {"posts": state["posts"], "sessions": [s.stats() for s in sessions.values()]}

    @app.post("/_standin/mode")
    async def set_mode(request: Request):
        new = (await request.json()).get("mode")
        if new not in ("ok", "error500"):
            return Response("bad mode", status_code=400)
        state["mode"] = new
        return {"mode": new}

    @app.post("/_standin/drop")
    async def drop(request: Request):
        """模拟媒体故障：服务端关闭该路径上仍在进行的连接（不算 DELETE）。"""
        path = (await request.json()).get("path")
        live = [x for x in sessions.values() if x.path == path and not (x.deleted or x.closing)]
        await asyncio.gather(*(x.close() for x in live), return_exceptions=True)
        return {"dropped": len(live)}

    @app.post("/{path:path}/whip")
    async def whip_post(path: str, request: Request):
        state["posts"] += 1
        if state["mode"] == "error500":
            return Response("internal error (standin)", status_code=500)
        if auth_url and not await authorize(request, path):
            return Response("authentication error", status_code=401)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/sdp":
            return Response("invalid Content-Type", status_code=400)
        offer = (await request.body()).decode()
        kinds = [ln[2:].split()[0] for ln in offer.splitlines() if ln.startswith("m=")]
        if kinds.count("video") != 1 or kinds.count("audio") > 1 or len(kinds) != 1 + kinds.count("audio"):
            return Response("unsupported media sections", status_code=406)

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sess = Session(path, uuid.uuid4().hex, pc)

        relay = RtspRelay(f"{relay_rtsp.rstrip('/')}/{path}", notifier(path)) if relay_rtsp else None

        @pc.on("track")
        def on_track(track):  # 在 setRemoteDescription 期间、第一帧之前：转推启动时已知道有没有音轨
            first = recorder is not None and track.kind == "video" and recorder.container is None
            if relay is not None and track.kind == "audio":
                relay.audio = True
            sess.tasks.append(asyncio.ensure_future(sess.consume(track, recorder if first else None, relay)))

        @pc.on("connectionstatechange")
        async def on_state():
            log.info("会话 %s 连接状态: %s", sess.secret, pc.connectionState)
            if pc.connectionState in ("failed", "closed") and not sess.closing:
                sess.closed_by_peer = True
                await sess.close()

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:  # noqa: BLE001 - offer 无法解析或没有可用编码
            log.warning("offer 处理失败: %s", e)
            await pc.close()
            return Response(f"invalid offer: {e}", status_code=400)
        sess.video_codec = _video_codec(pc.localDescription.sdp)
        sess.bundle = next((ln.split()[1:] for ln in offer.splitlines() if ln.startswith("a=group:BUNDLE")), [])
        sessions[sess.secret] = sess
        log.info("新会话 %s path=%s codec=%s", sess.secret, path, sess.video_codec)
        return Response(pc.localDescription.sdp, status_code=201, media_type="application/sdp",
                        headers={"Location": f"/{path}/whip/{sess.secret}", "ETag": "*"})

    @app.patch("/{path:path}/whip/{secret}")
    async def whip_patch(path: str, secret: str, request: Request):
        sess = sessions.get(secret)
        if sess is None or sess.deleted:
            return Response("session not found", status_code=404)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/trickle-ice-sdpfrag":
            return Response("invalid Content-Type", status_code=400)
        sess.patches += 1
        mid, mline = None, -1
        for line in (await request.body()).decode().splitlines():
            line = line.strip()
            if line.startswith("m="):
                mid, mline = None, mline + 1
            elif line.startswith("a=mid:"):
                mid = line[6:]
            elif line.startswith("a=candidate:"):
                try:
                    cand = candidate_from_sdp(line[12:])
                except (AssertionError, ValueError, IndexError):
                    return Response("invalid candidate", status_code=400)
                # aiortc 会忽略发给被 BUNDLE 的 mid 的候选；MediaMTX（pion）只有一个 ICE 代理，不区分 mid
                bundled = mid in sess.bundle
                cand.sdpMid = sess.bundle[0] if bundled else mid
                cand.sdpMLineIndex = None if bundled else max(mline, 0)
                await sess.pc.addIceCandidate(cand)
        return Response(status_code=204)

    @app.delete("/{path:path}/whip/{secret}")
    async def whip_delete(path: str, secret: str):
        sess = sessions.get(secret)
        if sess is None or sess.deleted:
            return Response("session not found", status_code=404)
        sess.deleted = True
        await sess.close()
        return Response(status_code=200)

    return app


class WhipStandin:
    """在子进程里启停 WHIP 端点（make run、测试与基准）。"""

    def __init__(
        self, auth_url: str | None = None, mode: str = "ok", record: str | None = None, relay_rtsp: str | None = None,
        hook_url: str | None = None,
    ) -> None:
        self.auth_url, self.mode, self.record, self.relay_rtsp = auth_url, mode, record, relay_rtsp
        self.hook_url = hook_url
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int | None = None, timeout: float = 20.0) -> "WhipStandin":
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port = port
        cmd = [sys.executable, "-m", "devtools.stack.whip_ingest",
               "--host", "127.0.0.1", "--port", str(port), "--mode", self.mode]
        if self.auth_url:
            cmd += ["--auth-url", self.auth_url]
        if self.record:
            cmd += ["--record", self.record]
        if self.relay_rtsp:
            cmd += ["--relay-rtsp", self.relay_rtsp]
        if self.hook_url:
            cmd += ["--hook-url", self.hook_url]
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"WHIP 端点进程提前退出，返回码 {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                self.stats()
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"WHIP 端点 {timeout}s 内未就绪")

    def stats(self) -> dict:
        r = httpx.get(f"{self.url}/_standin/stats", timeout=5)
        r.raise_for_status()
        return r.json()

    def set_mode(self, mode: str) -> None:
        httpx.post(f"{self.url}/_standin/mode", json={"mode": mode}, timeout=5).raise_for_status()

    def drop(self, path: str) -> int:
        return httpx.post(f"{self.url}/_standin/drop", json={"path": path}, timeout=5).json()["dropped"]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "WhipStandin":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description="WHIP 推流端点（make run 的媒体入口、测试里 MediaMTX 的替身）")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8889)
    ap.add_argument("--auth-url")
    ap.add_argument("--mode", choices=["ok", "error500"], default="ok")
    ap.add_argument("--record", help="把第一路视频的解码帧无损写入该文件（.mkv）")
    ap.add_argument("--relay-rtsp", help="把每路视频推到该 RTSP 地址下的同名路径，例如 rtsp://127.0.0.1:8554")
    ap.add_argument("--hook-url", help="转推开始/结束时 POST 的地址（?path=&event=...），如网关的 /api/mediamtx/hook")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("aioice", "aiortc", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = create_app(args.auth_url, args.mode, args.record, args.relay_rtsp, args.hook_url)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
