"""各分析器的单次开销（单线程，与工作进程相同的输入尺寸）：每帧、每张脸、每秒音频的毫秒数。"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from devtools.synthetic import bgr_to_i420, face_frames, speech_pcm
from workers.analysis.audio import SAMPLE_RATE, AudioActivity
from workers.analysis.emotion import face_crop, load_fer
from workers.analysis.face import FaceDetector
from workers.analysis.head_pose import HeadPoseEstimator
from workers.analysis.landmarks import FaceLandmarker
from workers.analysis.occlusion import OcclusionEstimator
from workers.analysis.ppg import PulseMonitor


def _ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # 预热
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return round((time.perf_counter() - started) * 1000.0 / repeat, 3)


def bench_costs(repeat: int = 100) -> dict:
    cv2.setNumThreads(1)
    frames = list(face_frames(30))
    image = frames[0]
    detector = FaceDetector()
    faces = detector.detect(image)
    face = faces.faces[0]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    occlusion = OcclusionEstimator()
    landmarker, pose = FaceLandmarker(), HeadPoseEstimator()
    marks = landmarker.locate(gray, face)

    pulse = PulseMonitor()
    pulse.set_face(face.landmarks, faces.image_size)
    planes = [bgr_to_i420(f) for f in frames]
    counter = iter(range(10**9))

    def sample() -> None:
        i = next(counter)
        pulse.add_frame(i / 15.0, planes[i % len(planes)])

    for _ in range(15 * 12):  # 先填满约 12 秒窗口，估计开销按满窗口计
        sample()
    speech = speech_pcm("考试开始，请认真作答。")[:SAMPLE_RATE]
    audio = AudioActivity()

    model = load_fer()
    crop = face_crop(gray, face, model.input_size)
    batch8 = np.stack([crop] * 8)
    emotion_1 = _ms(lambda: model.predict(crop[None]), repeat)
    emotion_8 = _ms(lambda: model.predict(batch8), repeat)
    return {
        "frame_size": list(faces.image_size),
        "ms_per_frame": {
            "face_detect": _ms(lambda: detector.detect(image), repeat),
            "gray_convert": _ms(lambda: cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), repeat),
            "ppg_skin_sample": _ms(sample, repeat),
        },
        "ms_per_face": {
            "landmarks_68": _ms(lambda: landmarker.locate(gray, face), repeat),
            "head_pose": _ms(lambda: pose.estimate(marks, faces.image_size), repeat),
            "occlusion": _ms(lambda: occlusion.update(gray, face.landmarks, True), repeat),
            "emotion_batch_1": emotion_1,
            "emotion_batch_8": round(emotion_8 / 8, 3),
        },
        "ms_per_call": {"ppg_estimate_12s_window": _ms(pulse.estimate, max(10, repeat // 5))},
        "ms_per_audio_second": {"level_and_vad": _ms(lambda: audio.add(speech), max(10, repeat // 5))},
        "emotion_backend": model.name,
    }
