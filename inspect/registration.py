"""Register a tested image to its template, coarse to fine, within a few milliseconds.

Phase correlation at 1/8 resolution gives the shift; ECC (affine by default) refines it at 1/8, then a
Lucas-Kanade fit on the edge pixels refines it at 1/4 resolution (ECC there cost 1.5 ms, this 1.0-1.1 ms, for
the same fit; ECC still runs where the edges leave the affine undetermined). On 100 DeepPCB templates moved up to
4 px and 0.5 deg, blurred and noisy: corner error median 0.11 px, 95th percentile 0.81, worst 4.3 px (ECC at
1/4: 0.10 / 0.99 / 3.3 px; rigid ECC was tighter on these rigid moves, but affine fits the real scans far
better, and the local re-alignment of the proposal stage absorbs the rest; see README). A half-resolution
stage was 3x slower for no useful gain. The result maps tested-image pixels to template pixels, so the
template can be warped into the tested image's own coordinates and boxes never need mapping back.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pcb_inspect.inspect.errors import ConfigError

_MOTIONS = {"affine": cv2.MOTION_AFFINE, "euclidean": cv2.MOTION_EUCLIDEAN}


@dataclass(frozen=True)
class RegistrationConfig:
    """How hard to try; the defaults register a 640x640 pair in about 2.5 ms on one core."""

    scales: tuple[float, ...] = (0.125, 0.25)  # phase correlation and ECC at the first, `refine` at each finer
    ecc_iterations: int = 30
    ecc_blur: int = 3
    ecc_epsilon: float = 1e-3  # 1e-4 cost 30% more time for no gain in corner error (DeepPCB, moved)
    max_shift_px: float = 40.0  # larger estimated shifts are treated as failures (fall back to identity)
    # affine, not just shift + rotation: the scans differ in scale and shear too. On DeepPCB trainval it cut
    # first-pass candidates from 52 to 19 a board at the same cost (see README); "euclidean" is the rigid model
    motion: str = "affine"
    refine: str = "edges"  # finer levels: "edges" (Lucas-Kanade on edge pixels, affine only) or "ecc"
    max_scale_change: float = 0.05  # an affine whose axes stretch more than this is a failure, not a scan

    def __post_init__(self) -> None:
        if not self.scales or not all(0.05 <= s <= 1.0 for s in self.scales):
            raise ConfigError(f"registration.scales {self.scales} must be non-empty, each in [0.05, 1]")
        if self.motion not in _MOTIONS:
            raise ConfigError(f"registration.motion {self.motion!r}: choose one of {', '.join(_MOTIONS)}")
        if self.refine not in ("edges", "ecc"):
            raise ConfigError(f"registration.refine {self.refine!r}: choose edges or ecc")
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


def _standardized(level: np.ndarray, blur: int) -> np.ndarray:
    """Blurred, zero mean, unit variance: a least-squares fit then ignores the camera's gain and offset."""
    smooth = cv2.GaussianBlur(level, (blur, blur), 0) if blur > 1 else level
    mean, std = cv2.meanStdDev(smooth)
    return (smooth - np.float32(mean[0, 0])) * np.float32(1.0 / max(float(std[0, 0]), 1e-6))


# smallest eigenvalue of the normalised Hessian that counts as determined: on 100 moved DeepPCB boards the one
# below it (0.0007, copper only along one edge) ended 9 px off; the next lowest (0.006) was 1.3 px off, as ECC
MIN_CONDITIONING = 2e-3
EDGE_STEP_PX = 0.01  # the edge fit stops when an iteration moves it less than this, in the level's pixels
_ROW = 1024  # cv2.remap wants maps under 32k a side: edge points are sampled as rows of this many


def _refine_on_edges(
    tested: np.ndarray, template: np.ndarray, warp: np.ndarray, iterations: int, step_px: float, blur: int
) -> np.ndarray | None:
    """Affine ``warp`` (template(warp @ x) ~ tested(x)) refined by inverse-compositional Lucas-Kanade, or None.

    Only pixels whose gradient is above the mean take part (the copper edges: flat copper and bare board say
    nothing about position), and their steepest-descent images and Hessian are computed once, so an iteration
    is one sparse remap and a 6x6 solve. On 40 DeepPCB pairs at 1/4 resolution it matched ECC's fit (binary
    disagreement 161,447 vs 161,489 pixels in all) in 1.0-1.1 vs 1.5 ms, converging in 3-4 iterations.
    """
    t = _standardized(tested, blur)
    gx = cv2.Sobel(t, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
    gy = cv2.Sobel(t, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)
    strength = gx * gx + gy * gy
    ring = 2  # samples near the edge would read replicated border
    inner = strength[ring:-ring, ring:-ring]
    ys, xs = np.nonzero(inner > inner.mean())
    if len(xs) < 64:
        return None
    n = len(xs)
    rows = -(-n // _ROW)
    ys += ring
    xs += ring
    # one row per quantity, padded to whole remap rows; padded points have zero gradient and do not move the fit
    gx_, gy_, x, y = columns = np.zeros((4, rows * _ROW), np.float32)
    gx_[:n], gy_[:n], x[:n], y[:n] = gx[ys, xs], gy[ys, xs], xs, ys
    # the linear part acts about the level's centre, so it is not confounded with the shift (the Hessian is
    # then well conditioned unless the edges really leave the affine undetermined)
    centre = np.array([[1, 0, (t.shape[1] - 1) / 2], [0, 1, (t.shape[0] - 1) / 2], [0, 0, 1]])
    xc, yc = x - np.float32(centre[0, 2]), y - np.float32(centre[1, 2])
    descent = np.empty((6, rows * _ROW), np.float32)
    np.multiply(gx_, xc, out=descent[0])
    np.multiply(gy_, xc, out=descent[1])
    np.multiply(gx_, yc, out=descent[2])
    np.multiply(gy_, yc, out=descent[3])
    descent[4], descent[5] = gx_, gy_
    wide = descent.astype(np.float64)
    hessian = wide @ wide.T
    scale = 1.0 / np.sqrt(np.maximum(np.diag(hessian), 1e-12))
    if np.linalg.eigvalsh(hessian * np.outer(scale, scale))[0] < MIN_CONDITIONING:
        return None  # e.g. edges in one direction only, or in one corner: the affine is not determined
    inverse_hessian = np.linalg.inv(hessian)
    reference = np.zeros(rows * _ROW, np.float32)
    reference[:n] = t[ys, xs]
    moving = _standardized(template, blur)
    uncentre = np.linalg.inv(centre)
    current = np.vstack([warp.astype(np.float64), [0, 0, 1]])
    for _ in range(iterations):
        a = current[:2].astype(np.float32)
        mapped = a[:, :2] @ columns[2:] + a[:, 2:]
        sampled = cv2.remap(moving, mapped[0].reshape(rows, _ROW), mapped[1].reshape(rows, _ROW),
                            cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()
        dp = inverse_hessian @ (descent @ (sampled - reference))
        step = np.array([[1 + dp[0], dp[2], dp[4]], [dp[1], 1 + dp[3], dp[5]], [0, 0, 1]])
        current = current @ centre @ np.linalg.inv(step) @ uncentre
        if not np.all(np.isfinite(current)):
            return None
        if max(abs(dp[4]), abs(dp[5]), float(np.abs(dp[:4]).max()) * max(tested.shape)) < step_px:
            break
    return current[:2].astype(np.float32)


def register(tested: np.ndarray, template: np.ndarray, config: RegistrationConfig = RegistrationConfig()) -> Registration:
    """Estimate the affine (or, by config, rigid) map taking tested-image coordinates to template coordinates."""
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
        if s != scales[0] and config.refine == "edges" and config.motion == "affine":
            refined = _refine_on_edges(tested_levels[s], template_levels[s], warp, config.ecc_iterations,
                                       EDGE_STEP_PX, config.ecc_blur)
            if refined is not None:
                warp = refined
                continue  # else ECC, slower but with the whole image's intensities, tries this level
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
