from __future__ import annotations

import cv2
import numpy as np

from pcb_inspect.inspect.crops import build_crops, crop_windows
from pcb_inspect.inspect.records import CROP_CHANNELS
from pcb_inspect.inspect.engine import front_end
from pcb_inspect.inspect.synthetic import generate_board


def _reference_planes(tested: np.ndarray, template: np.ndarray, diff: np.ndarray, window: np.ndarray, size: int) -> np.ndarray:
    """The plain definition: pad the whole board by replicating its edge, cut the window, map to +-1, resize."""
    pad = 200
    stack = cv2.copyMakeBorder(np.dstack([tested, template, diff.view(np.uint8)]), pad, pad, pad, pad,
                               cv2.BORDER_REPLICATE)
    x1, y1, x2, y2 = (int(v) + pad for v in window)
    roi = stack[y1:y2, x1:x2]
    planes = np.empty(roi.shape, np.float32)
    planes[..., :2] = roi[..., :2] * 2.0 - 1.0
    planes[..., 2] = roi[..., 2].view(np.int8)
    if planes.shape[0] != size:
        planes = cv2.resize(planes, (size, size), interpolation=cv2.INTER_AREA)
    return planes.transpose(2, 0, 1)


def test_crops_match_the_plain_definition_also_at_the_image_edge() -> None:
    board = generate_board(3)
    fe = front_end(board.tested, board.template)
    c = fe.candidates
    # the board's own candidates, plus boxes that leave the image on every side and one too big for 48 px
    extra = np.array([[0, 0, 6, 6], [630, 300, 640, 310], [300, 632, 310, 640], [-4, 600, 3, 640],
                      [100, 100, 190, 170]], np.int32)
    boxes, tight = np.vstack([c.boxes, extra]), np.vstack([c.tight, extra])
    crops = build_crops(fe.tested_bin, fe.template_bin, c.diff, boxes, tight)
    assert crops.shape == (len(boxes), len(CROP_CHANNELS), 48, 48) and crops.dtype == np.float32
    for i, window in enumerate(crop_windows(boxes, 48, 4)):
        expected = _reference_planes(fe.tested_bin, fe.template_bin, c.diff, window, 48)
        assert np.array_equal(crops[i, :3], expected), f"crop {i} (window {window.tolist()}) differs"
    assert np.all(np.abs(crops[:, :3]) <= 1.0)
    assert np.all(np.abs(crops[:, 3:]) <= 1.0)  # topology planes: clipped deltas, halved


def test_no_candidates_give_an_empty_batch() -> None:
    empty = np.zeros((0, 4), np.int32)
    z = np.zeros((64, 64), np.uint8)
    assert build_crops(z, z, z.view(np.int8), empty, empty).shape == (0, len(CROP_CHANNELS), 48, 48)
