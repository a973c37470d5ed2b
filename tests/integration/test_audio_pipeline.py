"""端到端音频：带 AAC 音轨的真实人脸片段经 RTSP -> 工作进程（PyAV 解音轨、重采样 16 kHz）-> monitor.update。

- 语音片段：电平出现、说话后 2 秒内出现 TALKING；语音情绪由 FunASR 的替身模型（tests/standins/funasr，
  不是真实模型）经真实的加载与调度路径给出，``models`` 列出 audio_emotion；
- 只有底噪的片段：有电平、从不出现 TALKING。
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from devtools.stack.servers import encode_clip
from devtools.synthetic import face_frames, speech_pcm
from shared import events as ev
from shared.messages import MonitorUpdate
from tests.conftest import Stack
from tests.helpers import wait_until
from workers.analysis.audio import SAMPLE_RATE

STANDINS = Path(__file__).resolve().parents[1] / "standins"
WORKER_PROCESSES = 1
FPS = 15.0


def _stand_in_model_dir() -> str:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"emotion2vec-stand-in-{os.getpid()}"
    path.mkdir(exist_ok=True)
    (path / "configuration.json").write_text("{}")
    return str(path)


WORKER_ENV = {
    "AUDIO_EMOTION_MODEL": _stand_in_model_dir(),
    "PYTHONPATH": os.pathsep.join(filter(None, [str(STANDINS), os.environ.get("PYTHONPATH")])),
    "EMOTION_BACKEND": "none",  # 本模块只看音频：省下 TensorFlow 的 CPU
}


def _clip(path: Path, pcm: np.ndarray) -> Path:
    seconds = len(pcm) / SAMPLE_RATE
    frames = face_frames(int(seconds * FPS), FPS, motion=False)
    return encode_clip(path, frames, fps=FPS, gop=30, audio=pcm)


@pytest.fixture(scope="module")
def audio_clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(3)
    noise = lambda s: rng.normal(0, 30, int(s * SAMPLE_RATE)).astype(np.int16)  # noqa: E731 - 约 -60 dBFS
    speech = speech_pcm("请大家保持安静，考试现在开始，不要交头接耳，认真作答。")
    talk = np.concatenate([noise(4), speech, noise(4)])
    return _clip(root / "talk.mp4", talk), _clip(root / "quiet.mp4", noise(8))


def test_speech_in_audio_track_yields_talking_level_and_speech_emotion(stack: Stack, audio_clips: tuple[Path, Path]) -> None:
    talk_clip, quiet_clip = audio_clips
    talk_name, _ = stack.publish(talk_clip)
    quiet_name, _ = stack.publish(quiet_clip)
    monitor = stack.recorder(ev.NS_MONITOR)
    talk_session = stack.start_stream(talk_name)["session_id"]
    quiet_session = stack.start_stream(quiet_name)["session_id"]

    def updates(session_id: str) -> list[tuple[float, MonitorUpdate]]:
        return [
            (r.at, MonitorUpdate.model_validate(r.data))
            for r in monitor.events
            if r.event == ev.MONITOR_UPDATE and r.data["session_id"] == session_id
        ]

    def talking(u: MonitorUpdate) -> bool:
        return any(a.code == "TALKING" for a in u.anomalies)

    # 一个完整循环（约 15 秒）内：先静后说；找“电平越过 -40 dBFS”（语音开始的代理）之后的首个 TALKING
    def onset_and_talking() -> tuple[float, float] | None:
        seq = updates(talk_session)
        for i in range(1, len(seq)):
            (_, prev), (t, cur) = seq[i - 1], seq[i]
            quiet_before = prev.metrics.audio.level_dbfs is not None and prev.metrics.audio.level_dbfs < -45
            if quiet_before and not talking(prev) and (cur.metrics.audio.level_dbfs or -99) > -40:
                first = next((ts for ts, u in seq[i:] if talking(u)), None)
                if first is not None:
                    return t, first
        return None

    onset, first_talking = wait_until(onset_and_talking, 45, "语音片段没有在电平上升后出现 TALKING")
    # 电平在语音开始后至多一个推送间隔（0.4 s）内上升，所以 1.6 s 的余量对应“语音开始后 2 s 内”
    assert first_talking - onset <= 1.6, first_talking - onset
    speech_update = wait_until(
        lambda: next((u for _, u in updates(talk_session) if u.metrics.audio.dominant), None),
        20,
        "语音情绪（替身模型）没有出现在 monitor.update",
    )
    assert speech_update.metrics.audio.dominant == "happy" and speech_update.metrics.audio.confidence > 0.5
    assert speech_update.models[-2:] == ["audio", "audio_emotion"]
    status = stack.stream_status(talk_name)
    assert status is not None and status["state"] == "streaming"

    # 只有底噪的流：一直有电平（约 -60 dBFS），从不判为说话
    quiet = wait_until(lambda: (u := updates(quiet_session)) and len(u) > 20 and u, 20, "底噪流的更新不足")
    levels = [u.metrics.audio.level_dbfs for _, u in quiet[3:]]
    assert all(lv is not None and -75 < lv < -45 for lv in levels), [lv for lv in levels if lv is None or not -75 < lv < -45]
    assert not any(talking(u) or u.metrics.audio.talking for _, u in quiet)
    assert all(u.metrics.audio.dominant is None and u.null_reasons["audio.dominant"] == "no_recent_speech" for _, u in quiet[3:])
