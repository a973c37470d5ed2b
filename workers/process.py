"""一个工作进程的生命周期：组装各部件、启动线程、运行协调循环、有序退出。

线程：协调循环（主线程，``coordination.assigner``）+ 每流一个拉流线程（``pipeline.ingest``）+ 一个分析线程
（``pipeline.analysis_step``）+ 一个发布线程（``output.publisher``）+ 一个学生端样本读取线程（``pipeline.client_ppg``）
+ 模型加载/语音情绪线程（``models``）。

``python -m workers.process`` 单独启动一个工作进程（通常由监督进程 ``python -m workers`` 启动）。
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import threading
import time

import cv2
import redis

from shared.keys import RedisKeys
from shared.logs import configure_logging
from shared.redis_url import sync_redis
from shared.retry import Backoff
from shared.settings import Settings

from .analysis.face import FaceDetector
from .analysis.landmarks import FaceLandmarker
from .coordination.assigner import StreamAssigner
from .coordination.leases import Leases
from .lifecycle import stop_on_signals
from .models.emotion import EmotionService
from .models.identity import IdentityService
from .models.speech import SpeechEmotionService
from .output.emitter import BatchEmitter
from .output.outbox import Outbox
from .output.publisher import EventPublisher, ReplayBuffer
from .output.report_sink import SessionSink
from .pipeline.analysis_step import AnalysisLoop
from .pipeline.client_ppg import ClientPpgReader
from .pipeline.pacing import AnalysisPacer
from .pipeline.reference_photo import ReferencePhotos
from .pipeline.registry import ConsumerRegistry
from .stats.gpu import GpuProbe
from .stats.metrics import WorkerMetrics

log = logging.getLogger(__name__)
# 启动时至多等情绪模型这么久再开始认领流
MODEL_LOAD_WAIT_S = 60.0


class WorkerProcess:
    def __init__(self, settings: Settings, worker_id: str | None = None, parent_pid: int | None = None) -> None:
        self.settings = settings
        self.parent_pid = parent_pid
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.stop_event = threading.Event()
        keys = RedisKeys(settings.key_prefix)
        redis_options = {"socket_timeout": settings.redis_timeout_s, "socket_connect_timeout": settings.redis_timeout_s}
        client = sync_redis(settings.redis_url, **redis_options)
        emitter = BatchEmitter(client, keys.socketio_channel)
        metrics = WorkerMetrics()
        self.publisher = EventPublisher(
            emitter, maxsize=settings.publish_queue_size, replay=ReplayBuffer(client, keys), metrics=metrics
        )
        self.emotion = EmotionService(settings.emotion_backend, settings.deepface_home)
        self.speech_emotion = SpeechEmotionService(settings.audio_emotion_model)
        self.identity = IdentityService(settings.identity_check_s > 0, settings.identity_budget_cores)
        outbox = Outbox(
            self.publisher,
            lambda: self.emotion.ready,
            lambda: self.speech_emotion.ready,
            metrics,
            settings.preview_mode,
            self.worker_id,
        )
        registry = ConsumerRegistry()
        wake = threading.Event()
        detector = FaceDetector(settings.face_detect_width, settings.face_min_score)
        pacer = AnalysisPacer(1.0 / settings.analysis_fps)
        self.analysis = AnalysisLoop(
            registry, detector, FaceLandmarker(), self.emotion, self.speech_emotion, self.identity, outbox, wake, metrics, pacer
        )
        self.client_ppg = ClientPpgReader(client, keys, registry.snapshot, self.stop_event)
        leases = Leases(client, keys, self.worker_id, settings.lease_ttl_ms)
        sink = SessionSink(client, keys)
        self.assigner = StreamAssigner(
            leases, registry, settings, sink, outbox, wake, metrics, GpuProbe.for_visible_devices(), pacer,
            ReferencePhotos(client, keys),
        )

    def run(self) -> None:
        log.info("worker %s starting (capacity %d)", self.worker_id, self.settings.worker_capacity)
        for service in (self.emotion, self.speech_emotion, self.identity, self.publisher, self.analysis, self.client_ppg):
            service.start()
        # 先等情绪模型加载完再认领流：加载时 TensorFlow 的导入占着 GIL 好几秒，这时认领的流打不开、也分析不了；
        # 这期间别的工作进程照常分析（加载失败或超时则不等，情绪字段为 null）
        if not self.emotion.wait(MODEL_LOAD_WAIT_S) and self.settings.emotion_backend != "none":
            log.warning("worker %s: emotion model not ready, claiming streams without it", self.worker_id)
        interval = self.settings.claim_interval_ms / 1000.0
        backoff = Backoff(base_s=2 * interval, cap_s=5.0)
        while not self.stop_event.is_set():
            started = time.monotonic()
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                log.warning("worker %s: supervisor %d is gone, exiting", self.worker_id, self.parent_pid)
                break
            delay = interval
            try:
                self.assigner.tick()
                backoff.succeeded()
            except redis.RedisError as exc:
                delay = backoff.failed()
                log.warning("worker %s: redis error (%s), retry %d", self.worker_id, exc, backoff.failures)
                self.assigner.fence()
            except Exception:  # noqa: BLE001 - 协调循环不能因单次意外退出（否则持有的流都要等租约过期）
                log.exception("worker %s: coordinator tick failed", self.worker_id)
            self.stop_event.wait(max(0.0, delay - (time.monotonic() - started)))
        self.shutdown()

    def shutdown(self) -> None:
        """停止全部流并释放租约，使其他进程能立即接管；再停下各线程。"""
        self.assigner.release_all()
        self.analysis.stop_event.set()
        self.analysis.join(2.0)
        self.speech_emotion.stop()
        self.identity.stop()
        self.publisher.close()
        log.info("worker %s stopped", self.worker_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="启动单个推理工作进程")
    parser.add_argument("--worker-id", default=None, help="工作进程 ID（默认 主机名-PID）")
    parser.add_argument("--parent-pid", type=int, default=None, help="监督进程 PID：它消失时本进程随之退出")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    cv2.setNumThreads(1)  # 每路流的图像很小：OpenCV 自己的线程池只会和拉流/分析线程争抢 CPU
    worker = WorkerProcess(settings, args.worker_id, parent_pid=args.parent_pid)
    stop_on_signals(worker.stop_event, f"worker {worker.worker_id}")
    worker.run()


if __name__ == "__main__":
    main()
