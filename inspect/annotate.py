"""Pictures for people: the board with its defects boxed and named, and a verdict banner."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pcb_inspect.inspect.records import DEFECT_CLASSES, Defect, GroundTruth, Verdict

# One colour per defect class (BGR), distinct on a black-and-white board.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = dict(
    zip(DEFECT_CLASSES, [(0, 0, 255), (0, 140, 255), (255, 0, 200), (0, 200, 0), (255, 120, 0), (200, 200, 0)])
)
VERDICT_COLOURS = {Verdict.PASS: (40, 160, 40), Verdict.FAIL: (30, 30, 220), Verdict.REVIEW: (0, 180, 230),
                   Verdict.ERROR: (120, 120, 120)}


def draw_inspection(
    tested: np.ndarray,
    defects: Sequence[Defect],
    verdict: Verdict,
    title: str = "",
    ground_truth: Sequence[GroundTruth] = (),
) -> np.ndarray:
    """BGR picture: ground truth as thin grey boxes (if given), defects as coloured boxes with class and score."""
    # dim the board so boxes stand out (scaled in uint8 by OpenCV: float arithmetic here cost 1.5 ms a board)
    gray = cv2.convertScaleAbs(tested, alpha=0.75)
    banner = np.zeros((36, gray.shape[1], 3), np.uint8)
    canvas = np.empty((36 + gray.shape[0], gray.shape[1], 3), np.uint8)
    image = canvas[36:]
    if gray.ndim == 2:
        cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR, dst=image)
    else:
        image[:] = gray
    for g in ground_truth:
        cv2.rectangle(image, g.box[:2], g.box[2:], (160, 160, 160), 1)
    for d in defects:
        colour = CLASS_COLOURS[d.cls]
        cv2.rectangle(image, d.box[:2], d.box[2:], colour, 2)
        label = f"{d.cls} {d.confidence:.2f}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        y = d.box[1] - 4 if d.box[1] - th - 6 > 0 else d.box[3] + th + 4
        x = max(0, min(d.box[0], image.shape[1] - tw - 4))  # keep the label inside the picture
        cv2.rectangle(image, (x, y - th - 3), (x + tw + 4, y + 3), colour, -1)
        cv2.putText(image, label, (x + 2, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    banner[:] = VERDICT_COLOURS[verdict]
    text = f"{verdict}  {len(defects)} defect(s)  {title}"
    cv2.putText(banner, text, (8, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    canvas[:36] = banner
    return canvas


def contact_sheet(images: Sequence[np.ndarray], columns: int = 4, tile: int = 400) -> np.ndarray:
    """Tiles of equal width in a grid, for one picture of a whole run."""
    if not images:
        return np.zeros((tile, tile, 3), np.uint8)
    tiles = [cv2.resize(im, (tile, round(im.shape[0] * tile / im.shape[1])), interpolation=cv2.INTER_AREA) for im in images]
    h = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 0, cv2.BORDER_CONSTANT) for t in tiles]
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)
