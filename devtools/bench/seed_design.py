"""种子设计的替身（``bench throughput --baseline seed`` 用，不是产品代码）：每路流一个线程，OpenCV 拉流，
每分析一帧调用一次 ``DeepFace.analyze(frame, actions=["emotion"])``（检测器 opencv），结果经 Redis 发到网关的 /monitor。

DeepFace 的情绪权重在临时 ``DEEPFACE_HOME`` 里随机生成（耗时与权重取值无关；这里不能下载权重）。
``latency_ms`` 按流内时间戳计帧龄：OpenCV 的读取有缓冲，跟不上时读到的是几秒前的帧，只从“读出”算会漏掉这段积压。

``python -m devtools.bench.seed_design --redis-url URL --stream SESSION_ID=RTSP_URL ...``
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

ANALYSE_EVERY = 3  # 15 fps 的流每 3 帧分析 1 帧（5 fps，与工作进程的目标一致）


def random_deepface_home() -> str:
    """在临时目录里生成随机初始化的 DeepFace 情绪权重，返回 DEEPFACE_HOME。"""
    home = Path(tempfile.mkdtemp(prefix="seed-deepface-"))
    weights = home / ".deepface" / "weights" / "facial_expression_model_weights.h5"
    weights.parent.mkdir(parents=True)
    os.environ["DEEPFACE_HOME"] = str(home)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from deepface.commons import weight_utils
    from deepface.models.demography.tf import Emotion

    real_download, real_load = weight_utils.download_weights_if_necessary, weight_utils.load_model_weights
    weight_utils.download_weights_if_necessary = lambda **_: str(weights)
    weight_utils.load_model_weights = lambda model, weight_file: model
    try:
        model = Emotion.load_model()
    finally:
        weight_utils.download_weights_if_necessary, weight_utils.load_model_weights = real_download, real_load
    model.save_weights(str(weights))
    return str(home)


def run_stream(session_id: str, url: str, manager, stop: threading.Event) -> None:  # noqa: ANN001
    import cv2
    from deepface import DeepFace

    from shared import events as ev
    from shared.messages import iso_utc

    while not stop.is_set():
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
        origin: float | None = None  # 墙钟时间 - 流内时间（首帧时对齐）
        i = 0
        while not stop.is_set() and cap.isOpened():
            ok, frame = cap.read()
            if not ok:
                break
            pts_s = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            origin = time.time() - pts_s if origin is None else min(origin, time.time() - pts_s)
            i += 1
            if i % ANALYSE_EVERY:
                continue
            try:
                result = DeepFace.analyze(frame, actions=["emotion"], detector_backend="opencv",
                                          enforce_detection=False, silent=True)  # fmt: skip
                dominant = result[0]["dominant_emotion"]
            except Exception:  # noqa: BLE001 - 种子设计：单帧失败就跳过（Haar 检测器多线程时偶发出错）
                dominant = None
            now = time.time()
            payload = {
                "session_id": session_id,
                "timestamp": iso_utc(now),
                "latency_ms": round((now - (origin + pts_s)) * 1000.0, 1),
                "models": ["emotion"],
                "metrics": {"emotion": {"dominant": dominant}},
            }
            manager.emit(ev.MONITOR_UPDATE, payload, namespace=ev.NS_MONITOR, room=ev.ALL_ROOM)
        cap.release()
        stop.wait(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--channel", default="socketio")
    parser.add_argument("--stream", action="append", default=[], help="SESSION_ID=RTSP_URL")
    args = parser.parse_args()
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;udp")
    random_deepface_home()
    import socketio

    manager = socketio.RedisManager(args.redis_url, channel=args.channel, write_only=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = []
    for spec in args.stream:
        session_id, url = spec.split("=", 1)
        t = threading.Thread(target=run_stream, args=(session_id, url, manager, stop), daemon=True)
        t.start()
        threads.append(t)
    stop.wait()


if __name__ == "__main__":
    main()
