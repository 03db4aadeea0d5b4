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
  not. On trainval this cut candidates from ~50 to ~13 a board and raised recall (0.9930 -> 0.9943 on a third).
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

    def __post_init__(self) -> None:
        for name in ("tolerance_px", "regrow_px", "pad_px", "border_px", "local_search_px", "local_margin_px"):
            if not 0 <= getattr(self, name) <= 64:
                raise ConfigError(f"proposals.{name} {getattr(self, name)} is not in [0, 64]")
        if self.min_area < 1 or self.split_px < 4 or self.max_candidates < 1:
            raise ConfigError("proposals.min_area >= 1, split_px >= 4 and max_candidates >= 1 are required")


@dataclass(frozen=True)
class Candidates:
    """Padded boxes in the tested image's pixels, the tight component boxes, and the difference mask."""

    boxes: np.ndarray  # (N, 4) int32 x1, y1, x2, y2, padded and clipped
    tight: np.ndarray  # (N, 4) int32, the differing pixels' own boxes
    areas: np.ndarray  # (N,) int32 differing pixels of each candidate
    diff: np.ndarray  # signed difference in {-1, 0, 1} as int8: +1 only in tested, -1 only in template
    template_bin: np.ndarray  # the template as finally aligned (locally re-aligned around candidates)

    def __len__(self) -> int:
        return len(self.boxes)

    def box_list(self) -> list[Box]:
        return [tuple(int(v) for v in b) for b in self.boxes]  # type: ignore[misc]


def binarize(image: np.ndarray) -> np.ndarray:
    """0/1 copper mask by Otsu's threshold, so gain and offset changes of the camera do not matter."""
    _, mask = cv2.threshold(image, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return mask


def tolerant_difference(tested: np.ndarray, template: np.ndarray, tolerance_px: int = 1) -> np.ndarray:
    """Signed difference of two 0/1 masks, ignoring pixels that have a match within ``tolerance_px``."""
    if tolerance_px:
        kernel = np.ones((2 * tolerance_px + 1,) * 2, np.uint8)
        extra = tested & (1 - cv2.dilate(template, kernel))
        missing = template & (1 - cv2.dilate(tested, kernel))
    else:
        extra = tested & (1 - template)
        missing = template & (1 - tested)
    return extra.astype(np.int8) - missing.astype(np.int8)


def _label(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components: (count, labels, stats). Grana's algorithm: 3x faster than OpenCV's default
    here on sparse difference masks (0.9 vs 3.1 ms for 640x640), same components."""
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)
    return n, labels, stats


def _components(mask: np.ndarray, min_area: int) -> np.ndarray:
    """(N, 5) x, y, w, h, area of 8-connected components with at least ``min_area`` pixels."""
    _, _, stats = _label(mask)
    stats = stats[1:]
    return stats[stats[:, 4] >= min_area]


def refine_template_locally(
    tested_bin: np.ndarray, template_bin: np.ndarray, tight: np.ndarray, search: int, margin: int
) -> np.ndarray:
    """A copy of the template where each candidate's neighbourhood is shifted by its own best offset.

    The offset (within +-``search`` px) minimises the squared difference over the candidate's box grown by
    ``margin``; a real defect is too small a part of that window to pull the offset towards itself.
    """
    h, w = tested_bin.shape
    out = template_bin.copy()
    big = cv2.copyMakeBorder(template_bin, search, search, search, search, cv2.BORDER_REPLICATE).astype(np.float32)
    tested_f = tested_bin.astype(np.float32)
    for x1, y1, x2, y2 in tight:
        X1, Y1, X2, Y2 = max(0, x1 - margin), max(0, y1 - margin), min(w, x2 + margin), min(h, y2 + margin)
        window = big[Y1 : Y2 + 2 * search, X1 : X2 + 2 * search]
        scores = cv2.matchTemplate(window, tested_f[Y1:Y2, X1:X2], cv2.TM_SQDIFF)
        dy, dx = np.unravel_index(int(np.argmin(scores)), scores.shape)
        if scores[dy, dx] < scores[search, search]:
            out[Y1:Y2, X1:X2] = window[dy : dy + Y2 - Y1, dx : dx + X2 - X1]
    return out


def _propose_once(tested_bin: np.ndarray, template_bin: np.ndarray, config: ProposalConfig) -> Candidates:
    """Candidate boxes where the registered, binarised pair differs."""
    diff = tolerant_difference(tested_bin, template_bin, config.tolerance_px)
    if b := config.border_px:
        diff[:b], diff[-b:], diff[:, :b], diff[:, -b:] = 0, 0, 0, 0
    mask = (diff != 0).view(np.uint8)
    n, labels, stats = _label(mask)
    stats = stats[1:]
    keep = stats[:, 4] >= config.min_area
    long_side = np.maximum(stats[:, 2], stats[:, 3])
    small = stats[keep & (long_side <= config.split_px)]
    big_ids = np.nonzero(keep & (long_side > config.split_px))[0] + 1
    parts = [small]
    if len(big_ids):
        lut = np.zeros(n, np.uint8)
        lut[big_ids] = 1
        big = lut[labels]
        core = cv2.morphologyEx(big, cv2.MORPH_OPEN, _K3)
        if config.regrow_px:
            core = cv2.dilate(core, _K3, iterations=config.regrow_px) & big
        parts.append(_components(core, config.min_area))
    stats = np.concatenate(parts) if len(parts) > 1 else small
    if len(stats) > config.max_candidates:
        stats = stats[np.argsort(-stats[:, 4], kind="stable")[: config.max_candidates]]
    tight = np.stack([stats[:, 0], stats[:, 1], stats[:, 0] + stats[:, 2], stats[:, 1] + stats[:, 3]], axis=1)
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
    return Candidates(padded.astype(np.int32), tight.astype(np.int32), stats[:, 4].astype(np.int32), diff, template_bin)


def propose(tested_bin: np.ndarray, template_bin: np.ndarray, config: ProposalConfig = ProposalConfig()) -> Candidates:
    """Candidate boxes where the registered, binarised pair differs, after local re-alignment around each."""
    candidates = _propose_once(tested_bin, template_bin, config)
    if config.local_search_px and len(candidates):
        local = refine_template_locally(
            tested_bin, template_bin, candidates.tight, config.local_search_px, config.local_margin_px
        )
        candidates = _propose_once(tested_bin, local, config)
    return candidates
