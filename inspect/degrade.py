"""What a line-scan camera does to a board image: a small rigid move, blur, gain/offset and sensor noise.

Why: the pipeline must register and difference real captures, which are never pixel-aligned with the
template nor cleanly binary. Tests, benchmarks and training augmentation use this to make such captures
from synthetic or DeepPCB boards while still knowing exactly where each ground-truth box went.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pcb_inspect.inspect.records import Box, GroundTruth
from pcb_inspect.inspect.deeppcb import PairRecord

Range = tuple[float, float]


@dataclass
class Degraded:
    """A degraded image and the move applied: `matrix` (2x3) maps original pixel coords to `image`."""

    image: np.ndarray
    matrix: np.ndarray
    shift: tuple[float, float]  # dx, dy in pixels, applied after the rotation
    angle: float  # degrees, OpenCV's sign (positive turns the content counter-clockwise on screen)
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    gain: float = 1.0
    offset: float = 0.0


def _check_range(name: str, value: Sequence[float], lo: float, hi: float) -> Range:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}") from None
    if not (lo <= a <= b <= hi) or math.isnan(a) or math.isnan(b):
        raise ValueError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {value!r}")
    return a, b


def _check_max(name: str, value: float, hi: float) -> float:
    v = float(value)
    if not 0.0 <= v <= hi:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, {hi}], got {value!r}")
    return v


def move_and_degrade(
    image: np.ndarray,
    rng: np.random.Generator,
    max_shift_px: float = 4.0,
    max_angle_deg: float = 0.5,
    blur_sigma: Range = (0.3, 1.0),
    noise_sigma: Range = (2.0, 8.0),
    gain: Range = (0.8, 1.2),
    offset: Range = (-20, 20),
) -> Degraded:
    """Rotate about the centre and shift (sub-pixel), replicate the border, blur, gain/offset, add noise.

    Every parameter is drawn uniformly from its range with `rng`, so a seeded generator repeats exactly.
    The border is replicated rather than filled black: the camera sees the board continue past the frame.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8 or min(image.shape) < 2:
        raise ValueError(f"image must be a 2-D uint8 array, got {image.dtype} {image.shape}")
    max_shift_px = _check_max("max_shift_px", max_shift_px, 64.0)
    max_angle_deg = _check_max("max_angle_deg", max_angle_deg, 45.0)
    blur = _check_range("blur_sigma", blur_sigma, 0.0, 20.0)
    noise = _check_range("noise_sigma", noise_sigma, 0.0, 128.0)
    gains = _check_range("gain", gain, 1e-3, 10.0)
    offsets = _check_range("offset", offset, -255.0, 255.0)

    h, w = image.shape
    dx, dy = (float(v) for v in rng.uniform(-max_shift_px, max_shift_px, 2))
    angle = float(rng.uniform(-max_angle_deg, max_angle_deg))
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    matrix[:, 2] += (dx, dy)
    out = cv2.warpAffine(image.astype(np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    sigma = float(rng.uniform(*blur))
    if sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    g, o, n = float(rng.uniform(*gains)), float(rng.uniform(*offsets)), float(rng.uniform(*noise))
    out = out * g + o
    if n > 0:
        out += rng.normal(0.0, n, out.shape).astype(np.float32)
    pixels = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return Degraded(pixels, matrix, (dx, dy), angle, sigma, n, g, o)


def transform_box(box: Box, matrix: np.ndarray, shape: tuple[int, ...]) -> Box | None:
    """Where `box` lies in the moved image: its centre goes through `matrix`, width and height are kept
    (the moves are sub-degree), then it is clipped to `shape` (H, W, ...). None if nothing is left."""
    m = np.asarray(matrix, float)
    if m.shape != (2, 3):
        raise ValueError(f"matrix must be 2x3, got {m.shape}")
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = m @ np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0, 1.0])
    hw, hh = (x2 - x1) / 2.0, (y2 - y1) / 2.0
    h, w = shape[:2]
    nx1, ny1 = max(0, math.floor(cx - hw + 0.5)), max(0, math.floor(cy - hh + 0.5))
    nx2, ny2 = min(w, math.floor(cx + hw + 0.5)), min(h, math.floor(cy + hh + 0.5))
    return (nx1, ny1, nx2, ny2) if nx2 > nx1 and ny2 > ny1 else None


def transform_ground_truth(
    truth: list[GroundTruth], matrix: np.ndarray, shape: tuple[int, ...]
) -> list[GroundTruth]:
    """Ground truth of the moved image; a box pushed wholly out of the frame is dropped."""
    moved = ((gt.cls, transform_box(gt.box, matrix, shape)) for gt in truth)
    return [GroundTruth(cls, box) for cls, box in moved if box is not None]


#: How a pair is presented: as given, the tested image moved and degraded, or the template against itself.
VARIANTS = ("clean", "moved", "defect-free")


def variant_pair(record: PairRecord, variant: str, seed: int) -> tuple[np.ndarray, np.ndarray, list[GroundTruth]]:
    """(tested, template, ground truth) for one board as the chosen variant presents it."""
    tested, template = record.load_images()
    gt = record.load_ground_truth()
    if variant == "clean":
        return tested, template, gt
    rng = np.random.default_rng(seed)
    if variant == "moved":
        moved = move_and_degrade(tested, rng)
        return moved.image, template, transform_ground_truth(gt, moved.matrix, tested.shape)
    if variant == "defect-free":
        return move_and_degrade(template, rng).image, template, []
    raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
