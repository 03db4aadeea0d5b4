"""Register a tested image to its template, coarse to fine, within a few milliseconds.

Phase correlation at 1/8 resolution gives the shift; ECC (affine by default) refines it at 1/8, then
at 1/4 resolution. Measured on 100 DeepPCB templates moved up to 4 px and 0.5 deg, blurred and noisy, in about
3 ms: corner error median 0.10 px, worst 3.3 px (rigid ECC: 0.05 / 0.48 px; the local re-alignment of the
proposal stage absorbs the difference, and affine fits the real scans far better; see README). A
half-resolution stage was 3x slower for no useful gain. The result maps tested-image pixels to template pixels,
so the template can be warped into the tested image's own coordinates and boxes never need mapping back.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pcb_inspect.inspect.errors import ConfigError


_MOTIONS = {"affine": cv2.MOTION_AFFINE, "euclidean": cv2.MOTION_EUCLIDEAN}


@dataclass(frozen=True)
class RegistrationConfig:
    """How hard to try; the defaults register a 640x640 pair in about 3 ms on one core."""

    scales: tuple[float, ...] = (0.125, 0.25)  # pyramid: phase correlation at the first, ECC at each
    ecc_iterations: int = 30
    ecc_blur: int = 3
    ecc_epsilon: float = 1e-3  # 1e-4 cost 30% more time for no gain in corner error (DeepPCB, moved)
    max_shift_px: float = 40.0  # larger estimated shifts are treated as failures (fall back to identity)
    # affine, not just shift + rotation: the scans differ in scale and shear too. On DeepPCB trainval it cut
    # first-pass candidates from 52 to 19 a board at the same cost (see README); "euclidean" is the rigid model
    motion: str = "affine"
    max_scale_change: float = 0.05  # an affine whose axes stretch more than this is a failure, not a scan

    def __post_init__(self) -> None:
        if not self.scales or not all(0.05 <= s <= 1.0 for s in self.scales):
            raise ConfigError(f"registration.scales {self.scales} must be non-empty, each in [0.05, 1]")
        if self.motion not in _MOTIONS:
            raise ConfigError(f"registration.motion {self.motion!r}: choose one of {', '.join(_MOTIONS)}")
        if self.ecc_iterations < 0:
            raise ConfigError(f"registration.ecc_iterations {self.ecc_iterations} is negative")


@dataclass(frozen=True)
class Registration:
    """2x3 affine ``matrix`` with template(matrix @ [x, y, 1]) ~ tested(x, y); ``ok`` False if ECC failed."""

    matrix: np.ndarray
    ok: bool

    @property
    def shift(self) -> tuple[float, float]:
        return float(self.matrix[0, 2]), float(self.matrix[1, 2])

    @property
    def angle_deg(self) -> float:
        return float(np.degrees(np.arctan2(self.matrix[1, 0], self.matrix[0, 0])))


def _pyramid(image: np.ndarray, scales: tuple[float, ...]) -> dict[float, np.ndarray]:
    """Float32 copies at each scale: the finest resized from the image, each coarser one from the next finer
    (area averaging composes, and a 160 px image is 60x cheaper to shrink than the 640 px original)."""
    levels: dict[float, np.ndarray] = {}
    source = image
    for s in sorted(set(scales), reverse=True):
        size = (max(8, round(image.shape[1] * s)), max(8, round(image.shape[0] * s)))
        if size == source.shape[::-1]:
            levels[s] = source.astype(np.float32)
        else:
            levels[s] = cv2.resize(source, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        source = levels[s]
    return levels


def register(tested: np.ndarray, template: np.ndarray, config: RegistrationConfig = RegistrationConfig()) -> Registration:
    """Estimate the Euclidean transform taking tested-image coordinates to template coordinates."""
    if tested.shape != template.shape:
        raise ConfigError(f"tested image {tested.shape} and template {template.shape} differ in size")
    scales = config.scales
    tested_levels, template_levels = _pyramid(tested, scales), _pyramid(template, scales)
    t_small, m_small = tested_levels[scales[0]], template_levels[scales[0]]
    window = cv2.createHanningWindow(t_small.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(t_small, m_small, window)
    warp = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    ok = True
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, config.ecc_iterations, config.ecc_epsilon)
    previous = scales[0]
    for s in scales:
        if not config.ecc_iterations:
            break
        warp[:, 2] *= s / previous
        previous = s
        try:
            _, warp = cv2.findTransformECC(
                tested_levels[s], template_levels[s], warp, _MOTIONS[config.motion], criteria, None, config.ecc_blur
            )
        except cv2.error:
            ok = False  # keep the estimate of the level before
    s = previous
    matrix = warp.astype(np.float64)
    matrix[:, 2] /= s
    stretch = np.linalg.svd(matrix[:, :2], compute_uv=False) if np.all(np.isfinite(matrix)) else [np.inf]
    if (
        not np.all(np.isfinite(matrix))
        or np.hypot(*matrix[:, 2]) > config.max_shift_px
        or np.max(np.abs(np.asarray(stretch) - 1.0)) > config.max_scale_change
    ):
        return Registration(np.array([[1, 0, 0], [0, 1, 0]], np.float64), False)
    return Registration(matrix, ok)


def warp_template(template: np.ndarray, registration: Registration, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The template resampled into the tested image's pixel grid (borders replicated). A 0/1 mask is warped
    with ``cv2.INTER_NEAREST``: 2.7x faster than bilinear gray, and thresholding would round it anyway."""
    h, w = template.shape
    return cv2.warpAffine(
        template,
        registration.matrix.astype(np.float32),
        (w, h),
        flags=interpolation | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def covers_image(shape: tuple[int, int], registration: Registration, margin: float = 0.0) -> bool:
    """True when every tested-image pixel's nearest template pixel exists (``margin`` px inside the edge): the
    usual case, in which no pixel needs the valid-region mask."""
    h, w = shape
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], np.float64).T
    x, y = registration.matrix @ corners
    lo = margin - 0.5
    return bool(x.min() >= lo and y.min() >= lo and x.max() <= w - 1 - lo and y.max() <= h - 1 - lo)


def valid_region(shape: tuple[int, int], registration: Registration, margin: float = 0.0) -> np.ndarray:
    """0/1 mask of tested-image pixels whose nearest template pixel exists (``margin`` px inside the edge).

    Outside it the warped template is only replicated border, so differences there say nothing about the board.
    Drawn as the template's extent mapped into the tested image (a convex polygon), not by warping a mask.
    """
    h, w = shape
    inverse = np.linalg.inv(np.vstack([registration.matrix, [0, 0, 1]]))[:2]
    lo = margin  # pixel centres: the polygon fill takes in the pixels its edges pass through
    corners = np.array([[lo, lo, 1], [w - 1 - lo, lo, 1], [w - 1 - lo, h - 1 - lo, 1], [lo, h - 1 - lo, 1]]).T
    polygon = (inverse @ corners).T
    mask = np.zeros((h, w), np.uint8)
    # fixed point with 4 fractional bits keeps the edge where the mapping puts it, not on whole pixels
    cv2.fillConvexPoly(mask, np.round(polygon * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    return mask
