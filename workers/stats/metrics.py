"""工作进程的 Prometheus 指标（多进程模式）。

监督进程在导入 prometheus_client 之前设置 ``PROMETHEUS_MULTIPROC_DIR``（见 :mod:`workers.stats.exporter`），
子进程继承它：每个子进程把自己的取值写进该目录下的文件，监督进程的 ``/metrics`` 汇总全部进程。
指标对象由工作进程创建一份（:class:`WorkerMetrics`），交给需要计数的部件；没有模块级实例。

标签都有界：阶段名、模型名、事件类型；不含流名或会话 ID（流的数量不固定）。
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# 各阶段耗时的桶（秒）：单帧解码与检测是毫秒级，批量情绪与发布可到几十毫秒
STAGE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
# 帧 -> 事件延迟的桶（秒）：目标在 0.2 秒以内，过载时可达数秒
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0)
STAGES = ("decode", "detect", "landmarks", "emotion", "rppg", "publish")


class WorkerMetrics:
    def __init__(self) -> None:
        # 多进程模式下取值在文件里，注册表只是让对象不挂到库的全局默认注册表上
        registry = CollectorRegistry()
        self.frames_decoded = Counter(
            "proctor_worker_frames_decoded_total", "解码的视频帧", registry=registry
        )
        self.frames_dropped = Counter(
            "proctor_worker_frames_dropped_total", "分析来不及而被新帧覆盖的待分析帧", registry=registry
        )
        self.frames_analyzed = Counter(
            "proctor_worker_frames_analyzed_total", "做过人脸级分析的帧", registry=registry
        )
        self.reconnects = Counter("proctor_worker_stream_reconnects_total", "拉流重连次数", registry=registry)
        self.stage_seconds = Histogram(
            "proctor_worker_stage_duration_seconds",
            "各阶段的耗时（decode 每包、detect 每帧、landmarks 每张主人脸、emotion 每批、rppg 每次估计、publish 每批）",
            ["stage"], buckets=STAGE_BUCKETS, registry=registry,
        )
        self.frame_to_event = Histogram(
            "proctor_worker_frame_to_event_seconds", "从帧解码完成到 monitor.update 交给发布线程的时间", buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.inference_errors = Counter(
            "proctor_worker_inference_errors_total", "模型推理或分析出错的次数", ["model"], registry=registry
        )
        self.assignments = Counter(
            "proctor_worker_stream_assignments_total",
            "流的认领（claimed）、接管（taken_over：上一个所属进程没有交出就消失了）、主动交出（released）与失去租约（lost）",
            ["event"], registry=registry,
        )
        self.published = Counter("proctor_worker_events_published_total", "交给 Redis 的事件批次", registry=registry)
        self.publish_dropped = Counter(
            "proctor_worker_publish_dropped_total", "发布队列满时丢弃的事件批次（Redis 太慢）", registry=registry
        )
        self.active_streams = Gauge(
            "proctor_worker_active_streams", "正在处理的流", multiprocess_mode="livesum", registry=registry
        )
        self.cpu_ratio = Gauge(
            "proctor_worker_process_cpu_ratio", "每个工作进程的 CPU 占用（1 = 一个核）", multiprocess_mode="liveall",
            registry=registry,
        )
        self.analysis_fps = Gauge(
            "proctor_worker_analysis_fps",
            "每个工作进程当前每路流的分析帧率（低于 ANALYSIS_FPS 即为降级：进程跟不上，所有流一起放慢）",
            multiprocess_mode="liveall", registry=registry,
        )
        self.rss_bytes = Gauge(
            "proctor_worker_process_resident_memory_bytes", "每个工作进程的常驻内存", multiprocess_mode="liveall",
            registry=registry,
        )
        for stage in STAGES:  # 先建出各阶段的时间序列：抓取时就能看到全部阶段（计数为 0）
            self.stage_seconds.labels(stage)
        for event in ("claimed", "taken_over", "released", "lost"):
            self.assignments.labels(event)
