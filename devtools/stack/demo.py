"""``make run`` 的演示考生：按一份考试脚本合成的真实人脸片段（带脉搏与音轨），循环推成 RTSP 流并建会话。

脚本（:data:`SCRIPT`）是六对“作答 4 秒 + 一种情况 8 秒”：有人过来、离开座位、说话、转头、低头、遮住脸。所有考生推同一个片段，
第 i 个从第 i 对开始（每对的开头是关键帧，``-c copy`` 也能从那里开始），所以各考生在同一时刻做着不同的事，
流开始后十来秒内墙上就有每种异常。片段在第一次运行时生成（约 15 秒，与网关、工作进程的启动同时进行），
缓存在 ``.devstack/clips``；改了脚本就改 :data:`SCRIPT_VERSION`。

“转头”“低头”是把照片贴在 3-D 平均人脸上转到 yaw 50° / pitch -35°（``devtools.synthetic._posed``）。
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from devtools.synthetic import PulseTrack, empty_frames, face_frames, simulate_pulse, voice_pcm
from workers.analysis.audio import SAMPLE_RATE

from .servers import ClipPublisher, RtspServer, encode_clip

log = logging.getLogger("devstack")

FPS = 15.0
SCRIPT_VERSION = 4
ANSWERING_S = 4.0
ACTION_S = 8.0
PAIR_S = ANSWERING_S + ACTION_S
SCRIPT = ("second_person", "leaves", "talks", "turns_away", "looks_down", "covers_face")
HEART_RATE_BPM = 70.0
# 高质量编码、关闭 AQ：x264 默认的 AQ 会把皮肤上约 0.3% 的脉搏变化量化掉（见 README 的 rPPG 一节）。
# 关键帧每 2 秒一个：RTSP 的读取端要从关键帧开始解码，工作进程中途连上时至多等这么久；每对的开头都是关键帧
QUALITY = ["-crf", "14", "-x264-params", "aq-mode=0:scenecut=0:ipratio=1.0"]
GOP = int(2 * FPS)


def _segment(kind: str, seconds: float, offset_s: float, pulse: PulseTrack) -> Iterator[np.ndarray]:
    count = int(seconds * FPS)
    if kind == "leaves":
        return empty_frames(count, FPS)
    options = {"second_person": {"second_face": True}, "turns_away": {"yaw_deg": 50.0},
               "looks_down": {"pitch_deg": -35.0}, "covers_face": {"cover_lower": True}}.get(kind, {})  # fmt: skip
    shifted = PulseTrack(pulse.times - offset_s, pulse.values, pulse.beat_times - offset_s)  # 每段的帧从 0 计时
    return face_frames(count, FPS, pulse=shifted, **options)  # type: ignore[arg-type]


def render(path: Path) -> Path:
    """按脚本生成片段：画面与音轨（约 -60 dBFS 的底噪，说话那一段是合成的嗓音）。"""
    pulse = simulate_pulse(len(SCRIPT) * PAIR_S + 1, HEART_RATE_BPM, steady=True)
    rng = np.random.default_rng(0)
    frames: list[Iterator[np.ndarray]] = []
    audio: list[np.ndarray] = []
    for i, kind in enumerate(SCRIPT):
        for segment, seconds, offset in (("answering", ANSWERING_S, i * PAIR_S), (kind, ACTION_S, i * PAIR_S + ANSWERING_S)):
            frames.append(_segment(segment, seconds, offset, pulse))
            hiss = rng.normal(0, 30, int(seconds * SAMPLE_RATE)).astype(np.int16)
            audio.append(hiss + voice_pcm(seconds, seed=i) if segment == "talks" else hiss)
    return encode_clip(path, (f for seg in frames for f in seg), FPS, gop=GOP, quality=QUALITY, audio=np.concatenate(audio))


def demo_clip(clip_dir: Path) -> Path:
    """缓存的片段；没有时生成。"""
    clip = clip_dir / f"demo-exam-v{SCRIPT_VERSION}.mp4"
    if not clip.exists():
        clip_dir.mkdir(parents=True, exist_ok=True)
        log.info("rendering the demo clip (first run only, about 15 s)")
        render(clip.with_suffix(".tmp.mp4")).rename(clip)
    return clip


def start_demo(base_url: str, api_key: str, count: int, rtsp: RtspServer, clip: Path, started: list) -> str:
    """为 ``count`` 个演示考生各往 ``rtsp`` 推一路流（第 i 个从脚本的第 i 对开始）并建会话（同一场考试），
    再为用浏览器推流的“你”建一个会话，返回它的学生端演示页地址。停止时先结束这些会话（Redis 的数据跨运行保留，
    不留下推流端已经不在的会话）。"""
    exam_id = f"demo-{uuid.uuid4().hex[:8]}"
    streams = []
    for index in range(count):
        student_id = f"s{index + 1:02d}"
        stream_name = f"exam-{exam_id}-user-{student_id}"
        start_s = (index % len(SCRIPT)) * PAIR_S
        publisher = ClipPublisher(clip, rtsp.publish_url(stream_name), start_s=start_s).start()
        started.append((f"publisher {stream_name}", publisher.stop))
        streams.append((student_id, stream_name))
    time.sleep(1.0)  # 推流端连上 RTSP 服务器之后再建会话：工作进程一认领就能读到，不错过脚本的第一段
    sessions: list[str] = []
    started.append(("demo sessions", lambda: _end(base_url, api_key, sessions)))
    for index, (student_id, stream_name) in enumerate(streams):
        created = _create(base_url, api_key, {"exam_id": exam_id, "student_id": student_id,
                                               "rtsp_url": rtsp.read_url(stream_name)})  # fmt: skip
        sessions.append(created["session_id"])
        log.info("demo student %s (from %s): session %s", student_id, SCRIPT[index % len(SCRIPT)], sessions[-1])
    # 用浏览器推流的考生：学生端演示页经 WHIP 推到嵌入式媒体入口，它转成 RTSP 后通知网关开始分析
    you = _create(base_url, api_key, {"exam_id": exam_id, "student_id": "you"})
    sessions.append(you["session_id"])
    return f"{base_url}/student-demo?session_id={you['session_id']}#publish_token={you['publish_token']}"


def _create(base_url: str, api_key: str, body: dict) -> dict:
    resp = httpx.post(f"{base_url}/api/create_session", json=body, headers={"X-API-Key": api_key}, timeout=10.0)
    resp.raise_for_status()
    return resp.json()


def _end(base_url: str, api_key: str, sessions: list[str]) -> None:
    for session_id in sessions:
        try:
            httpx.post(f"{base_url}/api/end_session", json={"session_id": session_id}, headers={"X-API-Key": api_key},
                       timeout=15.0)
        except httpx.HTTPError as exc:
            log.warning("demo session %s not ended: %s", session_id, exc)
