"""同一个学生：会话开头登记主人脸的描述子，之后隔几秒比一次；描述子距离持续超过阈值即“换了人”（IDENTITY_CHANGED）。

描述子是 dlib 的 ResNet 人脸描述子（128 维，同一人距离通常 < 0.6，见 :mod:`..models.identity`）。距离受姿态影响很大：
同一张照片转 45° 约 0.59、低头 35° 约 0.66，已接近不同人之间的最小距离（0.61，insightface 轮子 t1.jpg 的六个人），
所以只在接近正脸、没有遮挡、画面里只有一张脸时取描述子（:meth:`IdentityTracker.due`）。

    >>> tracker = IdentityTracker()
    >>> if tracker.due(t, usable=True): service.submit(chip, lambda d: tracker.deliver(d, t))
    >>> tracker.condition()  # None：还没登记；True：此刻坐着的不是登记的人

创建会话时给了参考照片（``create_session`` 的 ``reference_photo``）时，基准改为照片的描述子，不再从画面登记：

    >>> tracker.offer_photo(jpeg_bytes)             # 认领流时（分析线程看到这路流之前）
    >>> chip = photo_chip(tracker.take_photo(), detector, landmarker)   # 分析线程
    >>> service.submit(chip, tracker.deliver_reference) if chip is not None else tracker.photo_unusable()
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import dlib
import numpy as np

from shared.api import IdentityReference

from .face import Face, FaceDetector
from .landmarks import FaceLandmarker

CHIP_SIZE = 150  # ResNet 描述子的输入：按 dlib.get_face_chip 的方式对齐的 150x150 人脸


def face_chip(rgb: np.ndarray, face: Face, landmarks: np.ndarray) -> np.ndarray:
    """按 68 个关键点把人脸转正、缩放成 150x150 RGB（描述子的输入；约 1 ms，在分析线程里做，之后只传这一小块）。"""
    x, y, w, h = face.box
    box = dlib.rectangle(round(x), round(y), round(x + w), round(y + h))
    shape = dlib.full_object_detection(box, [dlib.point(round(px), round(py)) for px, py in landmarks])
    return np.asarray(dlib.get_face_chip(np.ascontiguousarray(rgb), shape, size=CHIP_SIZE, padding=0.25))


# 参考照片上的人脸至少这么大（两外眼角间距，像素）才用：再小的描述子不可靠
MIN_PHOTO_EYE_DISTANCE_PX = 30.0
PHOTO_MAX_SIDE = 1280  # 更大的照片先缩小（检测与对齐都不需要更多像素）


def photo_chip(data: bytes, detector: FaceDetector, landmarker: FaceLandmarker) -> np.ndarray | None:
    """参考照片（JPEG / PNG 字节）-> 对齐的 150x150 RGB 人脸；解不开、不是恰好一张脸、脸太小时 None。"""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    scale = PHOTO_MAX_SIDE / max(image.shape[:2])
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    faces = detector.detect(image).faces
    if len(faces) != 1:
        return None
    marks = landmarker.locate(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), faces[0])
    if float(np.linalg.norm(marks[45] - marks[36])) < MIN_PHOTO_EYE_DISTANCE_PX:
        return None
    return face_chip(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), faces[0], marks)


@dataclass
class IdentityTracker:
    """分析线程独占（``deliver`` 由描述子服务的线程调用，只放下结果，由分析线程在 ``condition`` 里并入）。

    - 登记：前 ``enrol_count`` 个可用的描述子（间隔 ``confirm_interval_s``）的平均；彼此距离超过阈值时重新登记；
    - 比对：每 ``check_interval_s`` 一次；距离超过 ``threshold`` 时 ``confirm_interval_s`` 后再比一次，
      条件一直为真直到比对重新通过（由异常状态机按持续时长决定何时报告）；
    - 人脸离开画面又回来：马上比一次（回来的可能是另一个人）；
    - 参考照片：照片的描述子回来之前不从画面登记；照片不可用时改为从画面登记（``source`` 记下是哪种基准）。
    """

    threshold: float = 0.6
    check_interval_s: float = 5.0
    confirm_interval_s: float = 1.0
    enrol_count: int = 3
    reference: np.ndarray | None = None
    distance: float | None = None  # 最近一次比对的距离
    _enrolling: list[np.ndarray] = field(default_factory=list)
    _next_at: float = 0.0
    _pending: bool = False  # 已提交、结果未回
    _delivered: tuple[np.ndarray, float] | None = None
    source: IdentityReference | None = None  # 比对的基准
    _photo: bytes | None = None  # 等分析线程取走的参考照片（JPEG / PNG 字节）
    _photo_pending: bool = False  # 照片的描述子还没回来：不从画面登记
    _reference_delivered: tuple[np.ndarray | None] | None = None

    @property
    def enrolled(self) -> bool:
        return self.reference is not None

    def offer_photo(self, data: bytes) -> None:
        """以这张参考照片为基准（认领流时调用，之后由分析线程 :meth:`take_photo`）。"""
        self._photo, self._photo_pending = data, True

    @property
    def photo_waiting(self) -> bool:
        """有一张参考照片等分析线程取走。"""
        return self._photo is not None

    def take_photo(self) -> bytes | None:
        """分析线程：取走待登记的参考照片（没有时 None）。"""
        photo, self._photo = self._photo, None
        return photo

    def deliver_reference(self, descriptor: np.ndarray | None) -> None:
        """参考照片的描述子（描述子服务的线程调用；失败时 None，改为画面登记）。"""
        self._reference_delivered = (descriptor,)

    def photo_unusable(self) -> None:
        """分析线程：照片里没有恰好一张可用的人脸，改为画面登记。"""
        self._reference_delivered = (None,)

    def wants(self, t: float, usable: bool) -> bool:
        """时刻 ``t`` 的这一帧该不该取描述子（``usable``：接近正脸、无遮挡、只有一张脸）；不改变状态。"""
        return usable and not self._pending and not self._photo_pending and t >= self._next_at

    def due(self, t: float, usable: bool) -> bool:
        """同 :meth:`wants`；返回 True 即视为已提交（结果经 :meth:`deliver` 回来）。"""
        if not self.wants(t, usable):
            return False
        self._pending = True
        return True

    def deliver(self, descriptor: np.ndarray | None, t: float) -> None:
        """描述子服务的结果（失败时 None）；``t`` 是所取那一帧的时刻。"""
        self._delivered = (descriptor, t) if descriptor is not None else None
        self._pending = False

    def face_returned(self) -> None:
        self._next_at = 0.0

    def condition(self) -> bool | None:
        """并入刚回来的结果，返回 IDENTITY_CHANGED 的条件（还没登记时 None）。"""
        reference, self._reference_delivered = self._reference_delivered, None
        if reference is not None:
            self._photo_pending = False
            if reference[0] is None:
                self.source = "photo_unusable"
            else:
                self.reference, self.source, self._next_at = reference[0], "photo", 0.0  # 马上比一次
        delivered, self._delivered = self._delivered, None
        if delivered is not None:
            self._incorporate(*delivered)
        if self.reference is None or self.distance is None:
            return None
        return self.distance > self.threshold

    def _incorporate(self, descriptor: np.ndarray, t: float) -> None:
        if self.reference is None:
            self._enrolling.append(descriptor)
            spread = max(float(np.linalg.norm(a - b)) for a in self._enrolling for b in self._enrolling)
            if spread > self.threshold:
                self._enrolling = [descriptor]  # 登记期间换了人或取到了坏的描述子：从这一个重新开始
            if len(self._enrolling) >= self.enrol_count:
                self.reference = np.mean(self._enrolling, axis=0)
                self.source = self.source or "session_start"
                self.distance = float(max(np.linalg.norm(d - self.reference) for d in self._enrolling))
            self._next_at = t + (self.check_interval_s if self.enrolled else self.confirm_interval_s)
            return
        self.distance = float(np.linalg.norm(descriptor - self.reference))
        self._next_at = t + (self.confirm_interval_s if self.distance > self.threshold else self.check_interval_s)
