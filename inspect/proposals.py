"""Candidate defect boxes from a registered pair: tolerant difference, cleanup, connected components.

Measured on DeepPCB trainval (see README, benchmarks/proposal_recall.py) and what shaped each step:
- A plain XOR after registration leaves 1-2 px slivers along every edge (residual misregistration and scanner
  edge jitter): ~490 components a board. A pixel only counts as different if the other image has no copper
  within 1 px (a 3x3 tolerance), which removes the slivers but keeps even 4-8 px mousebites.
- Some edges still differ by 2 px along their whole length; a real defect touching such an edge is swallowed
  by a long strip. Components longer than ``split_px`` are reduced to their 3x3-opened core, regrown inside
  the original difference, so the defect separates from the strip.
- After global registration many boards still differ by 1-3 px locally (scanner distortion): crescents at every
  hole, strips along edges. Each candidate's neighbourhood is re-aligned on its own (best shift within
  ``local_search_px`` by template matching) and the difference recomputed there: residue vanishes, defects do
  not. With rigid registration this cut candidates from ~52 to ~11 a board; with affine registration (the
  default) the first pass has ~19 and the second ~9, at the same recall.
- On held-out groups most false calls sat within a few pixels of the image edge, where the tested scan and its
  template are cut from the board differently: differences within ``border_px`` of the edge are ignored.
- Annotated boxes are larger than the differing pixels by a roughly constant 19-25 px per dimension, so a
  component's box is padded by a fixed ``pad_px`` a side (scaling the box matched far worse).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import Box

_K3 = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class ProposalConfig:
    tolerance_px: int = 1  # differences within this distance of the other image's copper are ignored
    min_area: int = 2  # smallest component kept, in differing pixels
    split_px: int = 40  # components with a longer side are split into their thick cores
    regrow_px: int = 3  # how far a core grows back into the difference after opening
    pad_px: int = 11  # added to each side of a component box (annotation convention)
    max_candidates: int = 256  # a board with more is almost surely misregistered; keep the largest
    border_px: int = 8  # differences this close to the image edge are ignored (scan edges differ, not boards)
    local_search_px: int = 3  # per-candidate re-alignment range (0: off)
    local_margin_px: int = 16  # context around a candidate used to re-align it
    #: a pair differing over more of the board than this is not inspected (ERROR): on DeepPCB trainval the
    #: registered pairs differ over 0.17% (median) to 0.83% (worst); a corrupt JPEG that decodes, a wrong
    #: template or a failed registration gives 2-45%
    max_difference: float = 0.03

    def __post_init__(self) -> None:
        for name in ("tolerance_px", "regrow_px", "pad_px", "border_px", "local_search_px", "local_margin_px"):
            if not 0 <= getattr(self, name) <= 64:
                raise ConfigError(f"proposals.{name} {getattr(self, name)} is not in [0, 64]")
        if not 0.0 < self.max_difference <= 1.0:
            raise ConfigError(f"proposals.max_difference {self.max_difference} is not in (0, 1]")
        if self.min_area < 1 or self.split_px < 4 or self.max_candidates < 1:
            raise ConfigError("proposals.min_area >= 1, split_px >= 4 and max_candidates >= 1 are required")


@dataclass(frozen=True)
class Candidates:
    """Padded boxes in the tested image's pixels, the tight component boxes, and the difference mask."""

    boxes: np.ndarray  # (N, 4) int32 x1, y1, x2, y2, padded and clipped
    tight: np.ndarray  # (N, 4) int32, the differing pixels' own boxes
    diff: np.ndarray  # signed difference in {-1, 0, 1} as int8: +1 only in tested, -1 only in template
    template_bin: np.ndarray  # the template as finally aligned (locally re-aligned around candidates)

    def __len__(self) -> int:
        return len(self.boxes)

    def box_list(self) -> list[Box]:
        return [tuple(int(v) for v in b) for b in self.boxes]  # type: ignore[misc]


def otsu_threshold(image: np.ndarray, stride: int = 2) -> float:
    """Otsu's threshold from every ``stride``-th pixel each way: 0.15 instead of 0.38 ms for 640x640, with the
    same candidates on DeepPCB trainval (10.83 a board, recall unchanged). Every 4th pixel was too few: the
    scans' grey edge pixels moved the threshold enough to add 0.3 candidates a board."""
    sample = np.ascontiguousarray(image[::stride, ::stride]) if min(image.shape) >= 32 * stride else image
    threshold, _ = cv2.threshold(sample, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return float(threshold)


def binarize(image: np.ndarray) -> np.ndarray:
    """0/1 copper mask by Otsu's threshold, so gain and offset changes of the camera do not matter."""
    _, mask = cv2.threshold(image, otsu_threshold(image), 1, cv2.THRESH_BINARY)
    return mask


def _one_sided_differences(tested: np.ndarray, template: np.ndarray, tolerance_px: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 masks of copper only in the tested image and only in the template, each ignoring pixels with a match
    within ``tolerance_px``. A saturating subtraction of 0/1 masks is ``a & ~b`` in one pass, without numpy's
    temporaries (the signed difference in 0.31 instead of 0.41 ms a board)."""
    if tolerance_px:
        kernel = np.ones((2 * tolerance_px + 1,) * 2, np.uint8)
        return cv2.subtract(tested, cv2.dilate(template, kernel)), cv2.subtract(template, cv2.dilate(tested, kernel))
    return cv2.subtract(tested, template), cv2.subtract(template, tested)


def tolerant_difference(tested: np.ndarray, template: np.ndarray, tolerance_px: int = 1) -> np.ndarray:
    """Signed difference of two 0/1 masks, ignoring pixels that have a match within ``tolerance_px``."""
    extra, missing = _one_sided_differences(tested, template, tolerance_px)
    return np.subtract(extra.view(np.int8), missing.view(np.int8))


def _pixels_in_boxes(mask: np.ndarray, rects: np.ndarray) -> np.ndarray:
    """Count of the mask's set pixels inside each (x, y, w, h) box."""
    return np.array([cv2.countNonZero(mask[y : y + h, x : x + w]) for x, y, w, h in rects], np.int64)


def components(mask: np.ndarray, min_area: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """Boxes (N, 4: x, y, w, h) of the 8-connected components of a 0/1 mask, and their outer contours.

    Traced as outer contours (two-level hierarchy, so a component inside another's hole is found too): the
    same boxes as labelling every pixel (checked on 50 DeepPCB difference masks, and in the tests), but 3x
    faster on sparse masks (0.33 vs 0.96 ms for 640x640), because only borders are visited. ``min_area``
    counts the mask's pixels inside a component's box: exact for the default of 2 (a single pixel has a 1x1
    box), an upper bound of the component's own pixels beyond it.
    """
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 4), np.int32), []
    outer = [c for c, h in zip(contours, hierarchy[0]) if h[3] < 0]
    rects = np.array([cv2.boundingRect(c) for c in outer], np.int32).reshape(-1, 4)
    keep = rects[:, 2] * rects[:, 3] >= min_area
    if min_area > 2:
        keep &= _pixels_in_boxes(mask, rects) >= min_area
    idx = np.nonzero(keep)[0]
    return rects[idx], [outer[i] for i in idx]


def _split_long(mask: np.ndarray, rect: np.ndarray, contour: np.ndarray, config: ProposalConfig) -> np.ndarray:
    """Boxes of a long component's thick cores (its 3x3 opening regrown inside it), in image pixels.

    Works in the component's own box (with room for the morphology), so the cost is that of the strip, not
    of the board; the component is isolated from neighbours sharing its box by filling its contour.
    """
    x, y, w, h = (int(v) for v in rect)
    room = config.regrow_px + 2
    H, W = mask.shape
    X1, Y1, X2, Y2 = max(0, x - room), max(0, y - room), min(W, x + w + room), min(H, y + h + room)
    own = np.zeros((Y2 - Y1, X2 - X1), np.uint8)
    cv2.drawContours(own, [contour], -1, 1, thickness=cv2.FILLED, offset=(-X1, -Y1))
    own &= mask[Y1:Y2, X1:X2]
    core = cv2.morphologyEx(own, cv2.MORPH_OPEN, _K3, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if config.regrow_px:
        core = cv2.dilate(core, _K3, iterations=config.regrow_px) & own
    rects, _ = components(core, config.min_area)
    rects[:, 0] += X1
    rects[:, 1] += Y1
    return rects


def refine_template_locally(
    tested_bin: np.ndarray, template_bin: np.ndarray, tight: np.ndarray, search: int, margin: int
) -> np.ndarray:
    """A copy of the template where each candidate's neighbourhood is shifted by its own best offset.

    The offset (within +-``search`` px) minimises the squared difference over the candidate's box grown by
    ``margin``; a real defect is too small a part of that window to pull the offset towards itself. The
    0/1 images are matched as 8-bit (no float copies of the board): 1.6x faster per window than float.
    """
    h, w = tested_bin.shape
    out = template_bin.copy()
    big = cv2.copyMakeBorder(template_bin, search, search, search, search, cv2.BORDER_REPLICATE)
    for x1, y1, x2, y2 in tight.tolist():  # Python ints: numpy scalars make each window's arithmetic slower
        X1, Y1, X2, Y2 = max(0, x1 - margin), max(0, y1 - margin), min(w, x2 + margin), min(h, y2 + margin)
        window = big[Y1 : Y2 + 2 * search, X1 : X2 + 2 * search]
        scores = cv2.matchTemplate(window, tested_bin[Y1:Y2, X1:X2], cv2.TM_SQDIFF)
        best, _, (dx, dy), _ = cv2.minMaxLoc(scores)  # first minimum in row-major order, as np.argmin
        if best < scores[search, search]:
            out[Y1:Y2, X1:X2] = window[dy : dy + Y2 - Y1, dx : dx + X2 - X1]
    return out


def _propose_once(tested_bin: np.ndarray, template_bin: np.ndarray, config: ProposalConfig) -> Candidates:
    """Candidate boxes where the registered, binarised pair differs."""
    extra, missing = _one_sided_differences(tested_bin, template_bin, config.tolerance_px)
    if b := config.border_px:
        for m in (extra, missing):
            m[:b], m[-b:], m[:, :b], m[:, -b:] = 0, 0, 0, 0
    diff = np.subtract(extra.view(np.int8), missing.view(np.int8))
    mask = cv2.bitwise_or(extra, missing)
    rects, contours = components(mask, config.min_area)
    long_side = np.maximum(rects[:, 2], rects[:, 3])
    is_long = long_side > config.split_px
    parts = [rects[~is_long]]
    parts += [_split_long(mask, rects[i], contours[i], config) for i in np.nonzero(is_long)[0]]
    rects = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if len(rects) > config.max_candidates:
        rects = rects[np.argsort(-_pixels_in_boxes(mask, rects), kind="stable")[: config.max_candidates]]
    tight = np.stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]], axis=1)
    h, w = mask.shape
    p = config.pad_px
    padded = np.stack(
        [
            np.maximum(tight[:, 0] - p, 0),
            np.maximum(tight[:, 1] - p, 0),
            np.minimum(tight[:, 2] + p, w),
            np.minimum(tight[:, 3] + p, h),
        ],
        axis=1,
    )
    return Candidates(padded.astype(np.int32), tight.astype(np.int32), diff, template_bin)


def propose(tested_bin: np.ndarray, template_bin: np.ndarray, config: ProposalConfig = ProposalConfig()) -> Candidates:
    """Candidate boxes where the registered, binarised pair differs, after local re-alignment around each."""
    candidates = _propose_once(tested_bin, template_bin, config)
    if config.local_search_px and len(candidates):
        local = refine_template_locally(
            tested_bin, template_bin, candidates.tight, config.local_search_px, config.local_margin_px
        )
        candidates = _propose_once(tested_bin, local, config)
    return candidates
