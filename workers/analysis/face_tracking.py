"""每路流的人脸检测范围：在上一帧的人脸附近检测，每隔 ``full_scan_s`` 整幅检测一次（找新出现的人脸）。

检测是每帧最贵的一步，开销与输入像素数成正比；考生的脸只占画面的一小块，下一帧（5 fps 时 200 ms 后）多半还在附近。
于是大多数帧只检测上一帧所有人脸外接框四周各放宽 ``margin`` 倍框长的一块（640x360 的画面里约是整幅的 1/3，
单线程 1.9 ms 对 5.8 ms）。以下情况改为整幅检测：

- 距上次整幅检测已有 ``full_scan_s``：第二个人从画面别处出现，最迟这么久之后被看到；
- 上一帧没有人脸（离开、遮挡、刚开始）；
- 局部检测找到的人脸比上一帧少（脸移出了那一块，或离开了）：同一帧立即整幅再看一次；
- 那一块超过画面的 ``max_area``（几张脸分得很开时，局部检测省不了多少）。

用法（分析线程，每路流一个实例，检测器各路共用）::

    tracker = FaceTracker()
    faces = tracker.detect(detector, frame_bgr, t)
"""

from __future__ import annotations

import numpy as np

from .face import FaceDetections, FaceDetector, Region


class FaceTracker:
    GRID = 16  # 块的边界对齐到的像素（原图）

    def __init__(self, full_scan_s: float = 1.0, margin: float = 0.6, max_area: float = 0.5) -> None:
        self.full_scan_s = full_scan_s
        self.margin = margin
        self.max_area = max_area
        self._last: FaceDetections | None = None
        self._full_at: float | None = None
        self.full_scans = 0  # 整幅检测次数（含局部检测丢脸后的补看）
        self.region_scans = 0

    def detect(self, detector: FaceDetector, image_bgr: np.ndarray, t: float) -> FaceDetections:
        """检测这一帧（``t``：帧的时刻，秒）的人脸，坐标都在整幅图上。"""
        region = self._region(t)
        if region is not None:
            self.region_scans += 1
            faces = detector.detect(image_bgr, region)
            assert self._last is not None
            if faces.count >= self._last.count:
                self._last = faces
                return faces
        self.full_scans += 1
        faces = detector.detect(image_bgr)
        self._last, self._full_at = faces, t
        return faces

    def _region(self, t: float) -> Region | None:
        """这一帧要检测的块；该整幅检测时 None。"""
        last = self._last
        if last is None or not last.faces or self._full_at is None:
            return None
        if t - self._full_at >= self.full_scan_s - 1e-3 or t < self._full_at:
            return None
        boxes = np.array([face.box for face in last.faces], np.float64)
        x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
        x1, y1 = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
        pad = self.margin * float(np.max(boxes[:, 2:]))
        width, height = last.image_size
        x0, y0, x1, y1 = max(0.0, x0 - pad), max(0.0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad)
        if (x1 - x0) * (y1 - y0) > self.max_area * width * height:
            return None
        # 边界向外取到 GRID 的整数倍：脸只是抖动时块不变，同一张脸的检测结果也就不随块抖动
        g = self.GRID
        return int(x0 // g * g), int(y0 // g * g), min(width, int(-(-x1 // g) * g)), min(height, int(-(-y1 // g) * g))
