"""Classifier input for each candidate: tested, template and signed difference, stacked as channels.

Binarised inputs make the classifier blind to camera gain, offset and noise, which registration and
thresholding already absorbed. A window at least ``size`` pixels wide is centred on each candidate; larger
candidates are shrunk to fit, smaller ones keep their pixel scale (mousebites are only a few pixels).
"""

from __future__ import annotations

import cv2
import numpy as np

CROP_CHANNELS: tuple[str, ...] = ("tested", "template", "difference")


def crop_windows(boxes: np.ndarray, size: int, margin: int, shape: tuple[int, int]) -> np.ndarray:
    """Square windows (x1, y1, x2, y2) centred on each box, side max(size, long side + 2*margin), may leave
    the image (padded when cut)."""
    if len(boxes) == 0:
        return np.zeros((0, 4), np.int32)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(size, np.maximum(w, h) + 2 * margin)
    cx = (boxes[:, 0] + boxes[:, 2]) // 2
    cy = (boxes[:, 1] + boxes[:, 3]) // 2
    x1 = cx - side // 2
    y1 = cy - side // 2
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1).astype(np.int32)


def build_crops(
    tested_bin: np.ndarray,
    template_bin: np.ndarray,
    diff: np.ndarray,
    boxes: np.ndarray,
    size: int = 48,
    margin: int = 4,
) -> np.ndarray:
    """(N, 3, size, size) float32 in [-1, 1]: tested and template copper as +-1, difference in {-1, 0, 1}."""
    n = len(boxes)
    out = np.zeros((n, 3, size, size), np.float32)
    if n == 0:
        return out
    h, w = tested_bin.shape
    stack = np.empty((h, w, 3), np.float32)
    stack[..., 0] = tested_bin * 2.0 - 1.0
    stack[..., 1] = template_bin * 2.0 - 1.0
    stack[..., 2] = diff
    windows = crop_windows(boxes, size, margin, (h, w))
    # pad once so windows that leave the image read the replicated border, like the camera would see
    pad = int((windows[:, 2] - windows[:, 0]).max())
    padded = cv2.copyMakeBorder(stack, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    for i, (x1, y1, x2, y2) in enumerate(windows):
        roi = padded[y1 + pad : y2 + pad, x1 + pad : x2 + pad]
        if roi.shape[0] != size:
            roi = cv2.resize(roi, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = roi.transpose(2, 0, 1)
    return out
