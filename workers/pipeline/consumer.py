"""一路流的消费者：拉流线程 + 最新帧槽位 + 分析状态 + 会话汇总增量。"""

from __future__ import annotations

import threading
import time

from shared.api import ConsumerStatus, StreamJob
from shared.messages import iso_utc
from shared.settings import Settings
from shared.streams import reader_url

from ..analysis.anomalies import DEFAULT_POLICIES, AnomalyPolicy
from ..analysis.attention import GazeRule
from ..analysis.identity import IdentityTracker
from ..output.aggregate import Deltas, SessionAggregator
from ..state.stream_state import StreamState
from .frames import Frame, FrameSlot
from .ingest import Observer, RtspIngest
from .pacing import AnalysisPacer


def anomaly_policies(settings: Settings) -> dict[str, AnomalyPolicy]:
    policies = {}
    for code, default in DEFAULT_POLICIES.items():
        onset = settings.anomaly_onsets.get(code, default.onset_s)
        policies[code] = AnomalyPolicy(onset_s=onset, offset_s=settings.anomaly_offset_s)
    return policies


class StreamConsumer:
    def __init__(
        self, job: StreamJob, settings: Settings, wake: threading.Event, decode_seconds: Observer | None = None
    ) -> None:
        self.job = job
        self.degraded_after_s = settings.degraded_after_s
        self.aggregate = SessionAggregator()
        self._reported_media = (0, 0)  # 已计入汇总的 (重连次数, 丢帧数)
        self.slot = FrameSlot()
        # 以下由分析线程写入：上次分析的那一帧的到达时刻（monotonic），与按目标帧率本应分析而没有分析的次数
        self.last_analysed_at: float | None = None
        self.frames_at_last_analysis = 0
        self.missed_analyses = 0
        self.state = StreamState(
            publish_interval_s=settings.monitor_interval_ms / 1000.0,
            analysis_interval_s=1.0 / settings.analysis_fps,
            policies=anomaly_policies(settings),
            gaze=GazeRule(settings.look_away_deg, settings.looking_down_deg),
            identity=IdentityTracker(settings.identity_threshold, settings.identity_check_s or float("inf")),
            preview_interval_s=settings.preview_interval_s,
            occlusion_threshold=settings.occlusion_threshold,
        )
        self.ingest = RtspIngest(
            stream_name=job.stream_name,
            url=reader_url(
                job.rtsp_url, settings.mediamtx_rtsp_url, settings.mediamtx_read_user, settings.mediamtx_read_password
            ),
            settings=settings,
            slot=self.slot,
            wake=wake,
            on_frame=self._sample_frame,
            on_audio=self.state.audio.sample,
            decode_seconds=decode_seconds,
        )

    def begin_analysis(self, pacer: AnalysisPacer, now: float) -> Frame | None:
        """分析线程：该流到点时取走最新一帧（没有新帧时 None），并记下这次之前错过的分析。"""
        if not pacer.due(self.last_analysed_at, now):
            return None
        frame = self.slot.take()
        if frame is None:
            return None
        decoded = self.ingest.frames_decoded
        at = frame.received_at  # 以帧到达的时刻计：各路流保持各自的相位，不会被同一步的处理对齐成一批
        self.missed_analyses += pacer.missed(self.last_analysed_at, at, decoded - self.frames_at_last_analysis)
        if self.slot.ready_at is not None:
            pacer.waited(time.monotonic() - self.slot.ready_at)
        self.last_analysed_at, self.frames_at_last_analysis = at, decoded
        self.slot.schedule(pacer.next_due(at))
        return frame

    def _sample_frame(self, frame: Frame) -> None:
        """拉流线程里的每个解码帧：rPPG 皮肤采样。"""
        self.state.pulse.add_frame(frame.timestamp_s, frame.i420, frame.key_frame)

    @property
    def name(self) -> str:
        return self.job.stream_name

    def start(self) -> None:
        self.ingest.start()

    def stop(self) -> None:
        """通知拉流线程退出（不等待；线程在读超时内自行结束）。"""
        self.ingest.stop()

    def session_state(self, now: float) -> str | None:
        """会话的媒体状态：有帧 -> STREAMING；已出过帧、之后 ``degraded_after_s`` 秒没有新帧 -> DEGRADED；
        还没出过帧 -> None（不改变会话状态）。"""
        last = self.ingest.last_frame_at
        if last is None:
            return None
        return "STREAMING" if now - last < self.degraded_after_s else "DEGRADED"

    def take_deltas(self) -> Deltas:
        """取出待写入的汇总增量（含自上次以来的重连与丢帧）。"""
        media = (self.ingest.reconnects, self.missed_analyses)
        reconnects, dropped = (a - b for a, b in zip(media, self._reported_media))
        self._reported_media = media
        self.aggregate.add_media(reconnects=reconnects, dropped_frames=dropped)
        return self.aggregate.take()

    def close_episodes(self, now: float) -> None:
        """流停止时结束进行中的异常事件段并计入汇总。"""
        self.aggregate.add_episodes(self.state.anomalies.close_all(now))

    def status(self, owner: str, pacer: AnalysisPacer) -> ConsumerStatus:
        now = time.monotonic()
        ingest, state = self.ingest, self.state
        age = None if ingest.last_frame_at is None else round((now - ingest.last_frame_at) * 1000.0, 1)
        return ConsumerStatus(
            stream_name=self.name,
            session_id=self.job.session_id,
            rtsp_url=self.job.rtsp_url,
            owner=owner,
            owner_alive=True,
            state=ingest.state,
            transport=ingest.transport,
            fps=round(ingest.fps_meter.rate(now), 2),
            analysis_fps=round(state.analysis_meter.rate(now), 2),
            analysis_fps_target=round(1.0 / pacer.target_interval_s, 2),
            degraded=pacer.degraded,
            frames_decoded=ingest.frames_decoded,
            frames_analyzed=state.frames_analyzed,
            dropped_frames=self.missed_analyses,
            reconnects=ingest.reconnects,
            latency_ms=state.throttle.last_latency_ms,
            last_frame_age_ms=age,
            last_error=ingest.last_error,
            updated_at=iso_utc(time.time()),
        )
