"""教师墙的预览小图（种子 001 第 5 节）：默认是马赛克（整幅缩成 16x9 格再放大，看得出有没有人、坐姿与画面变化，
认不出是谁、看不清屏幕与纸面），也可以配置成普通缩略图或关闭。只发给有权限的教师连接（``/monitor``），从不保存。

    >>> jpeg = preview_jpeg(frame_bgr, "mosaic")   # 160x90 的 JPEG，约 1–2 KB
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

PreviewMode = Literal["mosaic", "plain"]
WIDTH, HEIGHT = 160, 90
MOSAIC_CELLS = (16, 9)  # 每格 10x10 像素
JPEG_QUALITY = 70


def preview_jpeg(bgr: np.ndarray, mode: PreviewMode) -> bytes:
    if mode == "mosaic":
        cells = cv2.resize(bgr, MOSAIC_CELLS, interpolation=cv2.INTER_AREA)
        small = cv2.resize(cells, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)
    else:
        small = cv2.resize(bgr, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("预览小图编码失败")
    return encoded.tobytes()
