"""Classifier input for each candidate: tested, template and signed difference, plus two topology channels.

Binarised inputs make the classifier blind to camera gain, offset and noise, which registration and
thresholding already absorbed. A window at least ``size`` pixels wide is centred on each candidate; larger
candidates are shrunk to fit, smaller ones keep their pixel scale (mousebites are only a few pixels).

Topology separates the classes that look alike: an open splits a conductor, a mousebite does not; a short
joins two, a spur does not; a pin-hole opens a new hole. So each crop carries, as two constant planes, how
many more connected regions of each binary value the tested image has than the template around the
candidate. A held-out-group run without them confused short/spur and open/mousebite half the time.
"""

from __future__ import annotations

import cv2
import numpy as np

from pcb_inspect.inspect.records import CROP_CHANNELS

TOPOLOGY_MARGIN = 8  # px around a candidate's differing pixels in which regions are counted


def crop_windows(boxes: np.ndarray, size: int, margin: int) -> np.ndarray:
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


def _window(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The image inside a window (x1, y1, x2, y2); the part beyond the image edge repeats the edge pixels, as
    the camera would see more board. Only windows that leave the image are padded: padding the whole board
    for them cost more than the rest of the crops together."""
    x1, y1, x2, y2 = (int(v) for v in window)
    h, w = image.shape
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    roi = image[cy1:cy2, cx1:cx2]
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        roi = cv2.copyMakeBorder(roi, cy1 - y1, y2 - cy2, cx1 - x1, x2 - cx2, cv2.BORDER_REPLICATE)
    return roi


def _regions(mask: np.ndarray) -> int:
    return cv2.connectedComponents(mask, connectivity=8)[0] - 1


def topology_deltas(tested_bin: np.ndarray, template_bin: np.ndarray, tight: np.ndarray) -> np.ndarray:
    """(N, 2) change in the number of connected regions of value 1 and of value 0, tested minus template,
    counted in each candidate's tight box grown by TOPOLOGY_MARGIN."""
    h, w = tested_bin.shape
    out = np.zeros((len(tight), 2), np.float32)
    m = TOPOLOGY_MARGIN
    for i, (x1, y1, x2, y2) in enumerate(tight):
        ys, xs = slice(max(0, y1 - m), min(h, y2 + m)), slice(max(0, x1 - m), min(w, x2 + m))
        t, p = tested_bin[ys, xs], template_bin[ys, xs]
        out[i, 0] = _regions(t) - _regions(p)
        out[i, 1] = _regions(1 - t) - _regions(1 - p)
    return out


def build_crops(
    tested_bin: np.ndarray,
    template_bin: np.ndarray,
    diff: np.ndarray,
    boxes: np.ndarray,
    tight: np.ndarray,
    size: int = 48,
    margin: int = 4,
) -> np.ndarray:
    """(N, 5, size, size) float32 in [-1, 1]: tested and template as +-1, difference in {-1, 0, 1}, and the
    topology deltas (clipped to +-2, halved) as constant planes."""
    n = len(boxes)
    out = np.zeros((n, len(CROP_CHANNELS), size, size), np.float32)
    if n == 0:
        return out
    windows = crop_windows(boxes, size, margin)
    layers = (tested_bin, template_bin, diff.view(np.uint8))
    native = np.zeros(n, bool)  # windows already of the input size: copied raw, mapped to +-1 in one go below
    for i, window in enumerate(windows):
        tested, template, difference = (_window(layer, window) for layer in layers)
        if tested.shape[0] == size:
            native[i] = True
            out[i, 0], out[i, 1], out[i, 2] = tested, template, difference.view(np.int8)
            continue
        planes = np.empty(tested.shape + (3,), np.float32)
        planes[..., 0], planes[..., 1] = tested * 2.0 - 1.0, template * 2.0 - 1.0
        planes[..., 2] = difference.view(np.int8)
        out[i, :3] = cv2.resize(planes, (size, size), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
    out[native, :2] = out[native, :2] * 2.0 - 1.0
    topology = np.clip(topology_deltas(tested_bin, template_bin, tight), -2, 2) / 2
    out[:, 3:] = topology[:, :, None, None]
    return out
