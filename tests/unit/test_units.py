"""纯逻辑的单元测试：认领规划、流名解析、退避、最新帧槽位、节流与事件路由。"""

from __future__ import annotations

import random

import numpy as np
import pytest
from pydantic import ValidationError

from devtools.synthetic import empty_frames, face_frames
from gateway.signaling.sdp import OfferRejected, ice_fragment, parse_offer
from shared import events as ev
from shared.api import CreateSessionRequest, RtspStartRequest
from shared.messages import PPG_MAX_ROWS, PpgSamples, SessionHeartbeat
from shared.retry import backoff_delay
from shared.settings import Settings
from shared.streams import make_stream_name, parse_stream_name, reader_url
from tests.helpers import JOB
from workers.analysis.anomalies import AnomalyPolicy, AnomalyTracker
from workers.analysis.attention import GazeRule, NeutralPose, attention_from_pose
from workers.analysis.face import Face, FaceDetections, FaceDetector
from workers.analysis.head_pose import HeadPose, HeadPoseEstimator
from workers.analysis.ppg import PpgResult
from workers.coordination.balance import PeerLoad, plan_claims, plan_release
from workers.output.events import build_emotion_event, build_heart_rate_event, build_monitor_update
from workers.output.routing import route
from workers.pipeline.frames import Frame, FrameSlot
from workers.pipeline.ingest import fit_size
from workers.state.stream_state import StreamState
from workers.state.vision import Observation


@pytest.mark.parametrize(
    "unowned,mine,cap,total,peers,expected",
    [
        (4, 0, 8, 4, [PeerLoad(0, 8)], 2),  # 两个空进程平分
        (4, 0, 8, 4, [], 4),  # 只有自己
        (2, 2, 8, 4, [PeerLoad(0, 8)], 0),  # 已达平均目标且不比空闲者多 1 以上
        (1, 2, 8, 4, [PeerLoad(1, 1)], 1),  # 对方满员：自己接下剩余的
        (3, 7, 8, 10, [PeerLoad(0, 8)], 0),  # 目标 5，自己已有 7 -> 0，对方来接
        (10, 0, 3, 10, [], 3),  # 不超过容量
        (0, 0, 8, 0, [PeerLoad(0, 8)], 0),
        (4, 3, 8, 6, [PeerLoad(3, 8, headroom=-0.2)], 4),  # 对方已降级：自己接下全部（不按数量平分）
    ],
)
def test_plan_claims(unowned, mine, cap, total, peers, expected) -> None:
    assert plan_claims(unowned, mine, cap, total, peers) == expected


def test_plan_claims_leaves_streams_to_a_peer_with_headroom_when_one_more_would_degrade() -> None:
    peers = [PeerLoad(2, 8, headroom=0.5)]
    assert plan_claims(3, 2, 8, 7, peers, fits_one_more=False) == 0
    # 谁都没有余量：仍按平均目标 ceil(7/2) = 4 认领，剩下的留给低于目标的对方（各进程一起降级，而不是一方接下全部）
    assert plan_claims(3, 2, 8, 7, [PeerLoad(2, 8, headroom=-0.1)], fits_one_more=False) == 2
    assert plan_claims(1, 2, 8, 7, [PeerLoad(4, 8, headroom=-0.1)], fits_one_more=False) == 1  # 对方已到目标
    assert plan_claims(3, 2, 8, 7, [PeerLoad(3, 3, headroom=-0.1)], fits_one_more=False) == 3  # 对方满员：接下其余的


def test_plan_claims_converges_to_balanced_assignment() -> None:
    """模拟三个进程轮流按规划认领：全部流被认领，负载差不超过 1，且不超过容量。"""
    rng = random.Random(1)
    loads, caps, total = [0, 0, 0], [8, 8, 2], 13
    unowned = total
    for _ in range(20):
        for i in rng.sample(range(3), 3):
            peers = [PeerLoad(loads[j], caps[j]) for j in range(3) if j != i]
            n = plan_claims(unowned, loads[i], caps[i], total, peers)
            loads[i] += n
            unowned -= n
    assert unowned == 0 and loads[2] <= 2 and max(loads[:2]) - min(loads[:2]) <= 1


def test_plan_release_hands_streams_back_after_a_restart() -> None:
    """被杀进程重启后空着，接管了全部 8 路的进程逐条交还，直到 4 + 4；均衡时不动。"""
    loads, caps, total = [8, 0], [8, 8], 8
    for _ in range(10):
        n = plan_release(loads[0], total, [PeerLoad(loads[1], caps[1])])
        loads[0] -= n
        loads[1] += plan_claims(n, loads[1], caps[1], total, [PeerLoad(loads[0], caps[0])])
    assert loads == [4, 4]
    assert plan_release(4, 8, [PeerLoad(4, 8)]) == 0 and plan_release(3, 5, [PeerLoad(2, 8)]) == 0
    assert plan_release(5, 5, []) == 0  # 没有别的进程
    assert plan_release(6, 8, [PeerLoad(2, 2)]) == 0  # 对方已满


def test_stream_names_parse_and_round_trip() -> None:
    exam = "0f8fad5b-d9cb-469f-a165-70867728950e"
    parsed = parse_stream_name(make_stream_name(exam, "42"))
    assert parsed is not None and parsed.exam_id == exam and parsed.student_id == "42"
    assert parse_stream_name("exam-ABC123-user-u-7").student_id == "u-7"
    assert parse_stream_name("camera-1") is None


def test_request_models_validate() -> None:
    with pytest.raises(ValidationError, match="rtsp://"):
        RtspStartRequest(stream_name="exam-a-user-1", rtsp_url="udp://127.0.0.1:1234")
    assert RtspStartRequest(stream_name="a", rtsp_url="rtsps://h:322/a").rtsp_url.startswith("rtsps")
    with pytest.raises(ValidationError):
        CreateSessionRequest(student_id="1")


def test_settings_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSP_TRANSPORTS", "quic")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("RTSP_TRANSPORTS", "udp, tcp")
    monkeypatch.setenv("KEY_PREFIX", "exam")
    monkeypatch.setenv("MONITOR_INTERVAL_MS", "400")
    settings = Settings()
    assert settings.transports == ["udp", "tcp"] and settings.key_prefix == "exam:"
    monkeypatch.setenv("MONITOR_INTERVAL_MS", "100")
    with pytest.raises(ValidationError):
        Settings()


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    rng = random.Random(0)
    delays = [backoff_delay(n, 0.5, 4.0, rng) for n in range(1, 8)]
    for n, d in enumerate(delays, start=1):
        nominal = min(4.0, 0.5 * 2 ** (n - 1))
        assert nominal / 2 <= d < nominal
    assert max(delays) < 4.0


def test_fit_size_keeps_aspect_and_never_upscales() -> None:
    assert fit_size(1280, 720, 640, 360) == (640, 360)
    assert fit_size(640, 480, 640, 360) == (480, 360)
    assert fit_size(320, 240, 640, 360) == (320, 240)


def _frame(t: float) -> Frame:
    return Frame(np.zeros((3, 2), np.uint8), pts_s=t, received_at=t, wall_time=1.7e9 + t)


def test_frame_slot_keeps_newest() -> None:
    slot = FrameSlot()
    assert slot.take() is None
    for t in (1.0, 2.0, 3.0):
        slot.put(_frame(t))
    taken = slot.take()
    assert taken is not None and taken.pts_s == 3.0
    assert slot.take() is None


def test_face_detector_on_real_face_and_empty_scene() -> None:
    detector = FaceDetector(detect_width=320, min_score=0.6)
    face = detector.detect(next(face_frames(1)))
    assert face.count == 1 and face.faces[0].score > 0.8
    x, y, w, h = face.faces[0].box
    eyes = face.faces[0].landmarks[:2]
    assert (x <= eyes[:, 0]).all() and (eyes[:, 0] <= x + w).all() and (y <= eyes[:, 1]).all()
    assert detector.detect(next(empty_frames(1))).count == 0
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10), np.uint8))


def _obs(faces: FaceDetections, t: float) -> Observation:
    return Observation(faces=faces, frame_received_at=t, frame_wall_time=1.7e9 + t)


def test_tracker_throttles_and_accumulates_multi_face_time() -> None:
    one = FaceDetector().detect(next(face_frames(1)))
    two = FaceDetections(faces=one.faces * 2, image_size=one.image_size)
    tracker = StreamState(publish_interval_s=0.4, analysis_interval_s=0.2)
    tracker.observe(_obs(two, 0.0), 0.0)
    assert tracker.publish_due(0.0)
    assert tracker.mark_published(0.01) == pytest.approx(10.0)
    # 5 fps 分析、400ms 节流：早到几毫秒的第二帧分析后也应推送，推送间隔不低于 250ms
    published = [0.01]
    for t in (0.2, 0.395, 0.6, 0.8, 1.0, 1.19):
        tracker.observe(_obs(two, t), t)
        if tracker.publish_due(t):
            tracker.mark_published(t)
            published.append(t)
    assert published == [0.01, 0.395, 0.8, 1.19]
    tracker.observe(_obs(one, 1.4), 1.4)
    tracker.observe(_obs(one, 1.6), 1.6)
    assert tracker.multi_face_secs == pytest.approx(1.4)
    tracker.observe(_obs(two, 1.8), 1.8)
    tracker.observe(_obs(two, 9.0), 9.0)  # 断流间隔不计入
    assert tracker.multi_face_secs == pytest.approx(1.4)


def test_route_sends_broadcasts_to_all_room_and_room_events_only_to_room() -> None:
    tracker = StreamState(0.4, 0.2)
    tracker.observe(_obs(FaceDetector().detect(next(face_frames(1))), 0.0), 0.0)
    ppg = PpgResult(hr_bpm=71.5, signal_quality=0.8, snr_db=4.0, window_s=10.0)
    snap = tracker.snapshot(0.0, ppg)
    update = build_monitor_update(JOB, snap, 1.7e9, 12.0, 0.5, 3, emotion_ready=False)
    emotion = build_emotion_event("s-1", "exam-a-user-1", snap)
    heart = build_heart_rate_event("s-1", "exam-a-user-1", snap)
    table = {(e.event, e.namespace): e.room for e in route("exam-a-user-1", update, emotion, heart)}
    room = ev.stream_room("exam-a-user-1")
    assert table[(ev.MONITOR_UPDATE, ev.NS_MONITOR)] == [ev.ALL_ROOM, room]
    assert table[(ev.MONITOR_UPDATE, ev.NS_DEFAULT)] == room
    for ns in ev.NAMESPACES:
        for name in (ev.VIDEO_EMOTION_RESULT, ev.RTSP_VIDEO_ANALYSIS, ev.HEART_RATE_RESULT, ev.RTSP_HEART_RATE_ANALYSIS):
            assert table[(name, ns)] == [ev.ALL_ROOM, room]
        assert table[(ev.STUDENT_EMOTION, ns)] == room and table[(ev.STUDENT_HEART_RATE, ns)] == room
    assert update.system.dropped_frames == 3 and update.metrics.face.detected is True
    assert update.metrics.ppg.hr_bpm == 71.5 and update.models == ["face", "attention", "ppg"]
    assert emotion.result.dominant_emotion is None  # 情绪模型未就绪：null，不编造
    assert heart.result.hr_bpm == 71.5 and heart.result.face_detected is True


def test_anomaly_hysteresis_severity_and_episodes() -> None:
    tracker = AnomalyTracker({"NO_FACE": AnomalyPolicy(onset_s=2.0, offset_s=1.0, medium_s=5.0, high_s=10.0)})
    timeline = []
    steps = [False] * 15 + [True] * 2 + [False] * 60 + [True] * 10  # 0.2 s 一步
    for i, present in enumerate(steps):
        active = tracker.update({"NO_FACE": not present}, i * 0.2)
        timeline.append((round(i * 0.2, 1), [(a.code, a.severity) for a in active]))
    t = len(steps) * 0.2
    times = dict(timeline)
    assert times[1.8] == [] and times[2.0] == [("NO_FACE", "low")]  # 持续 2 秒才报告
    assert times[3.2] == [("NO_FACE", "low")]  # 短暂出现 0.4 秒：不结束
    assert times[13.0] == [("NO_FACE", "high")]
    assert times[17.0] == []  # 人脸回来 1 秒后结束
    (episode,) = tracker.episodes  # 短暂出现没有把它切成两段
    assert episode.start == 0.0 and episode.end == pytest.approx(15.4) and episode.peak_severity == "high"
    assert tracker.update({"NO_FACE": None}, t) == []  # 无法判断时保持状态


def test_head_pose_solver_recovers_projected_angles() -> None:
    """求解器本身：平均人脸按已知角度投影的 68 点（像素上的精度见 tests/integration/test_head_pose.py）。"""
    estimator = HeadPoseEstimator()
    for yaw, pitch in [(0, 0), (40, 0), (-40, 0), (0, 20), (0, -35), (25, -10)]:
        pose = estimator.estimate(estimator.project(yaw, pitch, 0, (640, 360)), (640, 360))
        assert pose is not None and abs(pose.yaw - yaw) < 1 and abs(pose.pitch - pitch) < 1 and pose.reprojection_px < 0.5
    assert estimator.estimate(np.zeros((68, 2)), (640, 360)) is None  # 退化的关键点


def test_neutral_pose_is_learnt_from_steady_frames_and_turns_are_relative_to_it() -> None:
    neutral = NeutralPose(frames=5)
    for yaw in (-40, -38, -39, 10, -41):  # 中途转开：重新计数
        neutral.learn(HeadPose(yaw, 5.0, 0.0, 1.0))
    assert not neutral.learnt
    for yaw in (-40, -38, -39, -42):  # 与转开之后的 -41 凑满 5 次
        neutral.learn(HeadPose(yaw, 5.0, 0.0, 1.0))
    assert neutral.learnt and neutral.yaw == pytest.approx(-40.0) and neutral.pitch == pytest.approx(5.0)
    neutral.learn(HeadPose(0.0, 0.0, 0.0, 1.0))  # 学到之后不再改变
    assert neutral.yaw == pytest.approx(-40.0)
    screen = neutral.relative(HeadPose(-40.0, 5.0, 0.0, 1.0))
    assert (screen.yaw, screen.pitch) == (0.0, 0.0)
    rule = GazeRule(look_away_deg=25.0, looking_down_deg=18.0)
    assert rule.conditions(screen, True) == {"LOOK_AWAY": False, "LOOKING_DOWN": False}
    assert rule.conditions(screen, False) == {"LOOK_AWAY": None, "LOOKING_DOWN": None}  # 还没学到：无法判断
    turned = neutral.relative(HeadPose(-10.0, 5.0, 0.0, 1.0))  # 转向相机：离开屏幕 30°
    assert rule.conditions(turned, True) == {"LOOK_AWAY": True, "LOOKING_DOWN": False}
    down = neutral.relative(HeadPose(-40.0, -20.0, 0.0, 1.0))
    assert rule.conditions(down, True) == {"LOOK_AWAY": False, "LOOKING_DOWN": True}
    dip = neutral.relative(HeadPose(-18.0, 5.0, 0.0, 1.0))  # 转开之后读数回落到 22°：滞回 5° 内仍算转开
    assert rule.conditions(dip, True)["LOOK_AWAY"] is False
    assert rule.conditions(dip, True, previous={"LOOK_AWAY": True})["LOOK_AWAY"] is True
    back = neutral.relative(HeadPose(-25.0, 5.0, 0.0, 1.0))  # 15°：回到屏幕
    assert rule.conditions(back, True, previous={"LOOK_AWAY": True})["LOOK_AWAY"] is False
    too_far = NeutralPose(frames=2)
    for _ in range(3):
        too_far.learn(HeadPose(70.0, 0.0, 0.0, 1.0))  # 这不是看屏幕的姿态
    assert not too_far.learnt
    good = attention_from_pose(screen, 0.9, 60.0)
    away = attention_from_pose(turned, 0.9, 60.0)
    assert good.score == 1.0 and 0 < away.score < 0.6 and attention_from_pose(None, None, 0.0).score == 0.0


def test_tracker_reports_look_away_only_after_it_persists() -> None:
    estimator = HeadPoseEstimator()
    tracker = StreamState(0.4, 0.2, pose_estimator=estimator)
    face = Face(box=(280.0, 120.0, 90.0, 110.0), score=0.9, landmarks=np.zeros((5, 2), np.float32))
    dets = FaceDetections(faces=(face,), image_size=(640, 360))
    codes = []
    for i in range(35):  # 2 秒正对（学到中立姿态），之后转开 40°
        points = estimator.project(0.0 if i < 10 else 40.0, 0, 0, (640, 360)).astype(np.float32)
        t = i * 0.2
        tracker.observe(Observation(dets, t, 1.7e9 + t, landmarks=points), t)
        codes.append([a.code for a in tracker.active])
    assert tracker.vision.neutral.learnt
    # 2.0 s 转开：按最近 5 次的中位数判定（晚 2 次分析，0.4 s），再持续 3 秒才报告
    first = next(i for i, c in enumerate(codes) if c)
    assert codes[first] == ["LOOK_AWAY"] and 2.0 + 3.0 <= first * 0.2 <= 2.0 + 3.0 + 0.6, first
    assert tracker.attention_score is not None and tracker.attention_score < 0.5


def test_session_aggregator_weights_by_time_and_survives_failed_flush() -> None:
    from shared.messages import Anomaly, AttentionMetrics, FaceMetrics, Metrics, MonitorUpdate, PpgMetrics
    from workers.output.aggregate import SessionAggregator

    def update(score: float, hr: float | None, codes: list[str]) -> MonitorUpdate:
        return MonitorUpdate(
            session_id="s-1",
            timestamp="2026-01-01T00:00:00.000Z",
            models=["face"],
            metrics=Metrics(
                attention=AttentionMetrics(score=score, confidence=0.9),
                face=FaceMetrics(detected=True, multi_face_secs=0.0),
                ppg=PpgMetrics(hr_bpm=hr, signal_quality=0.6 if hr else None),
            ),
            anomalies=[Anomaly(code=c, severity="low", duration_ms=0) for c in codes],
        )

    agg = SessionAggregator()
    agg.add_update(update(1.0, None, []), "happy", 0.0)
    agg.add_update(update(1.0, 70.0, []), "happy", 0.4)
    agg.add_update(update(0.0, 80.0, ["LOOK_AWAY"]), "sad", 0.8)
    agg.add_update(update(0.5, 75.0, []), "sad", 10.0)  # 断流 9 秒后：只计 2 秒
    first = agg.take()
    agg.restore(first)  # 写入失败：放回，下次一并写入
    agg.add_media(reconnects=1)
    d = agg.take()
    assert d.sums["analyzed_s"] == pytest.approx(2.8) and d.sums["look_away_s"] == pytest.approx(0.4)
    assert d.sums["attention_weighted"] / d.sums["attention_s"] == pytest.approx((0.4 + 0 + 1.0) / 2.8)
    assert d.sums["emotion:sad"] == pytest.approx(2.4) and d.sums["reconnects"] == 1
    assert (d.hr_min, d.hr_max) == (70.0, 80.0) and agg.take().empty


def test_rate_meter_is_safe_to_read_while_another_thread_marks() -> None:
    """拉流线程记录、协调线程读取：读取时不能因另一线程追加而抛出（soak 基准中曾因此让工作进程退出）。"""
    import threading

    from workers.state.rates import RateMeter

    meter = RateMeter(window_s=1e9)
    stop = threading.Event()

    def writer() -> None:
        t = 0.0
        while not stop.is_set():
            t += 1.0
            meter.mark(t)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for _ in range(20000):
            meter.rate(1e6)
    finally:
        stop.set()
        thread.join(2)
    assert meter.rate(1e6) > 0


CHROME_LIKE_OFFER = "\r\n".join(
    [
        "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE v1 a1",
        "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:v1", "a=ice-ufrag:uf1", "a=ice-pwd:pw1", "a=sendonly",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:a1", "a=ice-ufrag:uf1", "a=ice-pwd:pw1", "a=sendonly", "",
    ]
)  # fmt: skip


def test_trickle_fragment_uses_the_numeric_mid_media_mtx_expects() -> None:
    offer = parse_offer(CHROME_LIKE_OFFER, max_bytes=4096)
    assert offer.kinds == ["video", "audio"] and offer.mids == ["v1", "a1"] and offer.ice_ufrag == "uf1"
    frag = ice_fragment(offer, "candidate:1 1 udp 2122260223 192.168.1.5 54321 typ host", "a1", None)
    assert frag.splitlines() == [
        "a=ice-ufrag:uf1", "a=ice-pwd:pw1", "m=audio 9 UDP/TLS/RTP/SAVPF 0", "a=mid:1",
        "a=candidate:1 1 udp 2122260223 192.168.1.5 54321 typ host",
    ]  # fmt: skip
    # 没有 sdpMid 时按 m 行序号；未知的段、多行注入都被拒绝
    assert "a=mid:0" in ice_fragment(offer, "a=candidate:2 1 udp 1 10.0.0.2 9 typ host", None, 0)
    with pytest.raises(OfferRejected):
        ice_fragment(offer, "candidate:1 1 udp 1 10.0.0.2 9 typ host", "x9", 5)
    with pytest.raises(OfferRejected):
        ice_fragment(offer, "candidate:1 1 udp 1 10.0.0.2 9 typ host\r\na=ice-pwd:evil", "v1", 0)


def test_reader_credentials_only_go_to_our_media_server() -> None:
    ours = "rtsp://mediamtx:8554"
    assert reader_url("rtsp://mediamtx:8554/exam-a-user-1", ours, "r", "p@ss") == "rtsp://r:p%40ss@mediamtx:8554/exam-a-user-1"
    assert reader_url("rtsp://camera.lan:8554/x", ours, "r", "p") == "rtsp://camera.lan:8554/x"
    assert reader_url("rtsp://u:v@mediamtx:8554/x", ours, "r", "p") == "rtsp://u:v@mediamtx:8554/x"
    assert reader_url("rtsp://mediamtx:8554/x", ours, "", "") == "rtsp://mediamtx:8554/x"


def test_ppg_samples_accept_a_normal_batch_and_reject_bad_rows() -> None:
    rows = [[1000.0 + 66.7 * i, 180.2, 130.5, 110.25] for i in range(15)]
    assert len(PpgSamples(session_id="s-1", roi_seq=3, samples=rows).samples) == 15
    bad = {
        "时间不递增": [[1000.0, 1, 2, 3], [1000.0, 1, 2, 3]],
        "颜色越界": [[1000.0, 1, 2, 300]],
        "NaN": [[1000.0, float("nan"), 2, 3]],
        "负时间": [[-5.0, 1, 2, 3]],
        "行太多": [[float(i), 1, 2, 3] for i in range(PPG_MAX_ROWS + 1)],
        "空批": [],
        "列数不对": [[1000.0, 1, 2]],
    }
    for label, samples in bad.items():
        with pytest.raises(ValidationError):
            PpgSamples(session_id="s-1", samples=samples)
            pytest.fail(label)


def test_client_numbers_must_be_json_numbers_and_finite() -> None:
    """学生端发来的数只收 JSON 数字：字符串（含 "nan"）、布尔值、无穷都拒绝。"""
    row = [1000.0, 180, 130.5, 110]
    assert PpgSamples(session_id="s-1", roi_seq=2, samples=[row]).samples[0] == (1000.0, 180.0, 130.5, 110.0)
    for samples in ([["1000", 1, 2, 3]], [[1000.0, True, 2, 3]], [[1000.0, "nan", 2, 3]], [[float("inf"), 1, 2, 3]]):
        with pytest.raises(ValidationError):
            PpgSamples(session_id="s-1", samples=samples)
    with pytest.raises(ValidationError):
        PpgSamples(session_id="s-1", roi_seq=True, samples=[row])
    assert SessionHeartbeat(session_id="s-1", ts=1.7e9).ts == 1.7e9
    for ts in ("nan", "1.7e9", float("nan"), False):
        with pytest.raises(ValidationError):
            SessionHeartbeat(session_id="s-1", ts=ts)



def test_face_detection_does_not_leak_memory() -> None:
    """yuface 自带的扩展每次检测漏 36 KB（1000 次约 35 MB）；检测器直接调用 libfacedetection，内存不随检测次数增长。"""
    import psutil

    detector = FaceDetector()
    frames = list(face_frames(10))
    for frame in frames:
        assert detector.detect(frame).count == 1
    before = psutil.Process().memory_info().rss
    for i in range(1000):
        detector.detect(frames[i % len(frames)])
    grown_mb = (psutil.Process().memory_info().rss - before) / 2**20
    assert grown_mb < 8, f"RSS grew {grown_mb:.1f} MB over 1000 detections"
