"""扇出基准的事件源：S 个合成会话，每个每秒 ``rate`` 次分析，发出工作进程的全部事件。

事件由工作进程自己的代码组装与发送（``workers.output.routing.route`` 与 ``BatchEmitter``：一次分析一条 Redis
消息），负载是典型大小的 ``monitor.update``（约 850–900 字节，数值随时间变化）与兼容旧前端的事件；``monitor.update.timestamp``
在发出时填写，客户端据此计算延迟。各会话的相位在周期内均匀错开；落后时跳过错过的轮次（计数）而不是补发。

``python -m devtools.bench.fanout_feed --redis URL --channel C --sessions 300 --rate 2.5 --seconds 30``
（结束时打印 JSON）；``--dump FILE`` 只把每个会话一次分析的事件写成 JSON（Node.js 参照的 feed.js 用同一份）。
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import dataclass

import redis

from shared.fanout import Emission
from shared.messages import (
    Anomaly,
    EmotionResult,
    HeartRateEvent,
    HeartRateResult,
    Metrics,
    MonitorUpdate,
    StreamResultEvent,
    SystemMetrics,
    iso_utc,
)
from shared.risk import RiskEvent, risk_score
from workers.output.emitter import BatchEmitter
from workers.output.routing import route

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
ANOMALY_CODES = ("LOOK_AWAY", "TALKING", "MULTI_FACE", "NO_FACE", "OCCLUSION")


@dataclass
class SyntheticSession:
    session_id: str
    stream_name: str
    exam_id: str
    student_id: str | None = None
    index: int = 0

    def step(self, now: float) -> list[Emission]:
        """一次分析的事件（与工作进程发出的相同：两个命名空间、兼容旧前端的事件名、student.*）。

        数值随时间变化（专注度、心率、电平；每 10 秒换一种异常，风险分随之变），教师墙因此要重画、重排。"""
        phase = (now / 10.0 + self.index * 0.37) % 1.0
        code = ANOMALY_CODES[int(now / 10.0 + self.index) % len(ANOMALY_CODES)]
        anomalies = [Anomaly(code=code, severity="medium", duration_ms=int(phase * 10000))] if phase > 0.5 else []
        metrics = Metrics.model_validate({
            "attention": {"score": round(0.5 + 0.5 * phase, 3), "confidence": 0.93},
            "face": {"detected": True, "multi_face_secs": 0.0, "occlusion_ratio": 0.04},
            "emotion": {"dominant": EMOTIONS[self.index % len(EMOTIONS)], "confidence": 0.58},
            "ppg": {"hr_bpm": round(70 + 10 * phase, 1), "signal_quality": 0.71, "source": "video"},
            "audio": {"dominant": "neutral", "confidence": 0.66, "level_dbfs": round(-50 + 20 * phase, 1),
                      "speech_ratio": 0.1, "talking": False},
        })
        update = MonitorUpdate(
            session_id=self.session_id, stream_name=self.stream_name, exam_id=self.exam_id, student_id=self.student_id,
            risk=risk_score([RiskEvent(a.code, a.severity, a.duration_ms / 1000) for a in anomalies]),
            timestamp=iso_utc(now), models=["face", "attention", "emotion", "ppg", "audio"],
            metrics=metrics, anomalies=anomalies,
            latency_ms=84.0, system=SystemMetrics(gpu_util=None, cpu_util=0.62, dropped_frames=3, analysis_fps=5.0),
        )
        scores = {name: round(1.0 / len(EMOTIONS), 4) for name in EMOTIONS}
        emotion = StreamResultEvent(
            session_id=self.session_id, stream_name=self.stream_name, video_timestamp=now,
            result=EmotionResult(dominant_emotion="neutral", face_detected=True, face_count=1, confidence=0.62,
                                 emotions=scores),
        )
        heart = HeartRateEvent(
            session_id=self.session_id, stream_name=self.stream_name, video_timestamp=now,
            result=HeartRateResult(hr_bpm=74.2, signal_quality=0.71, face_detected=True, window_s=10.0, source="video"),
        )
        return [(e.event, e.data, e.namespace, e.room) for e in route(self.stream_name, update, emotion, heart,
                                                                      self.exam_id)]


def sessions(count: int, exam_id: str = "bench") -> list[SyntheticSession]:
    out = []
    for i in range(count):
        student = f"s{i:04d}"
        out.append(SyntheticSession(str(uuid.uuid4()), f"exam-{exam_id}-user-{student}", exam_id, student, i))
    return out


def write_steps(path: str, group: list[SyntheticSession]) -> None:
    """每个会话一次分析的事件写成 JSON：``{"sessions": [{"emissions": [[事件, 负载, 命名空间, 房间], ...]}, ...]}``
    （Node.js 参照的 feed.js 读它）。"""
    steps = [{"emissions": [list(e) for e in s.step(time.time())]} for s in group]
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"sessions": steps}, fh, ensure_ascii=False)


def feed(emitter: BatchEmitter, group: list[SyntheticSession], rate: float, seconds: float) -> dict:
    """按节拍发 ``seconds`` 秒：会话 i 在 ``start + (k + i/S) / rate`` 发第 k 次分析的事件。"""
    period = 1.0 / rate
    start = time.monotonic()
    sent = skipped = 0
    k = 0
    while True:
        for i, session in enumerate(group):
            due = start + (k + i / len(group)) * period
            if due - start >= seconds:
                return {"steps_sent": sent, "skipped": skipped, "seconds": round(time.monotonic() - start, 2)}
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -period:  # 落后一整个周期：这一轮跳过
                skipped += 1
                continue
            emitter.emit_batch(session.step(time.time()))
            sent += 1
        k += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis")
    parser.add_argument("--channel")
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--rate", type=float, default=2.5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--dump", help="只写出每个会话一次分析的事件（JSON）后退出")
    args = parser.parse_args()
    group = sessions(args.sessions)
    if args.dump:
        write_steps(args.dump, group)
        return
    emitter = BatchEmitter(redis.Redis.from_url(args.redis, socket_timeout=5), args.channel)
    print(json.dumps(feed(emitter, group, args.rate, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
