"""Synthetic DeepPCB-like board pairs: a defect-free template and a tested image with known defects.

Why: tests, benchmarks and pre-training need pairs whose ground truth is exact and free. They imitate
DeepPCB: 640x640 binarised scans at ~48 px/mm, copper black (0) on white substrate (255), the six
defect types at DeepPCB's sizes, boxes padded 10-12 px a side around the differing pixels, and the
same files on disk, so DeepPCB readers take a synthetic set unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pcb_inspect.inspect.records import DEFECT_CLASSES, Box, GroundTruth, type_id_from_class

COPPER, SUBSTRATE = 0, 255
#: Board looks: traces between pads; the same sunk in a copper pour; parallel strips (DeepPCB 92000).
STYLES: tuple[str, ...] = ("routed", "pour", "bus")
JPEG_QUALITY = 95
_PAD = (10, 12)  # GT box padding a side (inclusive), as DeepPCB's annotators drew them
_HALF = 64  # half-size of the window a defect is drawn and checked in
_SUB = 4  # cv2 fixed-point bits, for sub-pixel defect shapes
Shape = tuple  # ("circle", cx, cy, r) | ("rect" | "oval", cx, cy, hw, hh) | ("path", points, width)
Paint = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (window copy, window origin xy) -> new window


@dataclass
class SyntheticBoard:
    """One pair: `template` defect-free, `tested` with `ground_truth` defects; uint8 HxW, 0 or 255."""

    template: np.ndarray
    tested: np.ndarray
    ground_truth: list[GroundTruth]
    seed: int
    style: str = "routed"


@dataclass
class _Layout:
    """Copper being drawn plus an id per element, so a trace's clearance check can ignore its own pads."""

    size: int
    copper: np.ndarray
    ids: np.ndarray
    scratch: np.ndarray
    holes: list[tuple[int, int, int]] = field(default_factory=list)
    segments: list[tuple[np.ndarray, np.ndarray, int]] = field(default_factory=list)
    next_id: int = 1

    @classmethod
    def empty(cls, size: int) -> _Layout:
        z = np.zeros((size, size), np.uint8)
        return cls(size, z, np.zeros((size, size), np.int32), z.copy())

    def free(self, shape: Shape, grow: int, allowed: tuple[int, ...] = (0,)) -> bool:
        """True when `shape` grown by `grow` px touches only elements in `allowed` (0 = substrate)."""
        if shape[0] == "path" and len(shape[1]) > 2:  # per segment: much smaller boxes to scan
            pts = shape[1]
            return all(self.free(("path", pts[i:i + 2], shape[2]), grow, allowed)
                       for i in range(len(pts) - 1))
        x0, y0, x1, y1 = _bbox(shape, grow, self.size)
        if x1 <= x0 or y1 <= y0:
            return True
        _draw(self.scratch, shape, grow, 1)
        roi = self.scratch[y0:y1, x0:x1]
        touches = cv2.countNonZero(cv2.bitwise_and(roi, self.copper[y0:y1, x0:x1])) > 0
        hit = self.ids[y0:y1, x0:x1][roi > 0] if touches else np.zeros(0, np.int32)
        roi[:] = 0
        bad = hit != 0
        for a in allowed[1:]:
            bad &= hit != a
        return not bad.any()

    def place(self, shape: Shape) -> int:
        ident, self.next_id = self.next_id, self.next_id + 1
        _draw(self.copper, shape, 0, 1)
        _draw(self.ids, shape, 0, ident)
        if shape[0] == "path":
            pts, w = shape[1].astype(float), shape[2]
            self.segments += [(pts[i], pts[i + 1], w) for i in range(len(pts) - 1)]
        return ident


def _bbox(shape: Shape, grow: int, size: int) -> tuple[int, int, int, int]:
    if shape[0] == "path":
        m = shape[2] // 2 + grow + 2
        (x0, y0), (x1, y1) = shape[1].min(0) - m, shape[1].max(0) + m
    else:
        r = (shape[3] if shape[0] == "circle" else max(shape[3], shape[4])) + grow + 2
        x0, y0, x1, y1 = shape[1] - r, shape[2] - r, shape[1] + r, shape[2] + r
    return max(0, int(x0)), max(0, int(y0)), min(size, int(x1) + 1), min(size, int(y1) + 1)


def _draw(img: np.ndarray, shape: Shape, grow: int, value: int) -> None:
    if shape[0] == "path":  # OpenCV's thick lines have round caps and joints, like plotted traces
        cv2.polylines(img, [shape[1].astype(np.int32)], False, value, thickness=shape[2] + 2 * grow)
        return
    if shape[0] == "circle":
        cv2.circle(img, (int(shape[1]), int(shape[2])), int(shape[3]) + grow, value, -1)
        return
    cx, cy, hw, hh = (int(v) for v in shape[1:])
    if shape[0] == "rect":
        cv2.rectangle(img, (cx - hw - grow, cy - hh - grow), (cx + hw + grow, cy + hh + grow), value, -1)
    else:  # oval (stadium)
        r = min(hw, hh)
        a, b = ((cx - hw + r, cy), (cx + hw - r, cy)) if hw >= hh else ((cx, cy - hh + r), (cx, cy + hh - r))
        cv2.line(img, a, b, value, thickness=2 * (r + grow) + 1)


def _route(a: np.ndarray, b: np.ndarray, f: float) -> np.ndarray:
    """A PCB-style path a -> b: axis-parallel runs (fraction f of them first) and one exact 45-degree run."""
    (ax, ay), (bx, by) = (int(v) for v in a), (int(v) for v in b)
    dx, dy = bx - ax, by - ay
    k = min(abs(dx), abs(dy))
    gx, gy = (dx > 0) - (dx < 0), (dy > 0) - (dy < 0)
    fx, fy = round((dx - gx * k) * f), round((dy - gy * k) * f)
    pts = [(ax, ay), (ax + fx, ay + fy), (ax + fx + gx * k, ay + fy + gy * k), (bx, by)]
    return np.array([p for i, p in enumerate(pts) if i == 0 or p != pts[i - 1]], np.int64)


def _offset(pts: np.ndarray, dist: float) -> np.ndarray:
    """The polyline moved sideways by `dist` with mitred corners: bundles of parallel traces."""
    seg = np.diff(pts.astype(float), axis=0)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True)
    n = np.stack([-seg[:, 1], seg[:, 0]], 1)
    a, b = np.vstack([n[:1], n]), np.vstack([n, n[-1:]])
    return np.round(pts + dist * (a + b) / (1 + (a * b).sum(1))[:, None]).astype(np.int64)


def _footprint(rng: np.random.Generator, w: int, clr: int, cx: int, cy: int) -> list[tuple[Shape, int]]:
    """Pads of one component as (shape, drill radius), at DeepPCB's scale (~48 px/mm)."""
    kind = ("row", "single", "via", "smd")[int(np.searchsorted([0.35, 0.65, 0.85], rng.random()))]
    if kind == "via":
        return [(("circle", cx, cy, w // 2 + int(rng.integers(4, 9))), int(rng.integers(3, 6)))]
    if kind == "single":
        if rng.random() < 0.6:
            r = int(rng.integers(16, 34))
            return [(("circle", cx, cy, r), int(r * rng.uniform(0.3, 0.5)))]
        return [(("rect", cx, cy, int(rng.integers(14, 36)), int(rng.integers(14, 36))), 0)]
    if kind == "smd":
        hw, hh, gap = int(rng.integers(8, 16)), int(rng.integers(12, 28)), int(rng.integers(12, 40))
        return [(("rect", cx + sgn * (hw + gap // 2), cy, hw, hh), 0) for sgn in (-1, 1)]
    n, r = int(rng.integers(2, 7)), int(rng.integers(11, 20))  # a row (or two) of through-hole pads
    pitch = 2 * r + clr + int(rng.integers(2, 14))
    pad = rng.choice(["circle", "rect", "oval"])
    drill = int(r * rng.uniform(0.35, 0.5)) if pad != "rect" or rng.random() < 0.5 else 0
    rows, sep, vertical = 2 if rng.random() < 0.4 else 1, pitch * int(rng.integers(2, 5)), rng.random() < 0.5
    out = []
    for u, v in ((cx + (i - (n - 1) / 2) * pitch, cy + j * sep) for j in range(rows) for i in range(n)):
        x, y = (int(v), int(u)) if vertical else (int(u), int(v))
        out.append((("circle", x, y, r) if pad == "circle" else (pad, x, y, r, int(r * 1.4)), drill))
    return out


def _routed(rng: np.random.Generator, size: int, density: float = 1.0) -> _Layout:
    """Bundles, pads and vias joined by 45-degree traces, traces crossing the board, all with clearance."""
    lay = _Layout.empty(size)
    w, clr, far = int(rng.integers(8, 18)), int(rng.integers(8, 18)), size + 40
    scale = density * (size / 640) ** 2

    def crossing() -> np.ndarray:
        side, t = int(rng.integers(4)), rng.integers(0, size, 2)
        ends = [np.array([(t[i], -40), (t[i], far), (-40, t[i]), (far, t[i])][k % 4], np.int64)
                for i, k in enumerate((side, side + int(rng.integers(1, 4))))]
        return _route(ends[0], ends[1], rng.uniform(0, 1))

    def try_paths(paths: list[np.ndarray], width: int, allowed: tuple[int, ...] = (0,)) -> None:
        for pts in paths:
            if len(pts) > 1 and lay.free(("path", pts, width), clr, allowed):
                lay.place(("path", pts, width))
                return

    for _ in range(int(rng.integers(0, 4))):  # bundles of parallel traces
        base, pitch, k = crossing(), w + clr + int(rng.integers(0, 8)), int(rng.integers(2, 8))
        for i in range(k):
            try_paths([_offset(base, (i - (k - 1) / 2) * pitch)], w)
    pads: list[tuple[int, np.ndarray]] = []
    n_comp, placed = max(2, round(int(rng.integers(8, 18)) * scale)), 0
    for _ in range(n_comp * 4):
        fp = _footprint(rng, w, clr, *(int(v) for v in rng.integers(-10, size + 10, 2)))
        if placed < n_comp and all(lay.free(s, clr + w) for s, _ in fp):
            placed += 1
            for s, drill in fp:
                pads.append((lay.place(s), np.array(s[1:3], np.int64)))
                lay.holes += [(int(s[1]), int(s[2]), drill)] if drill else []
    centres = np.array([c for _, c in pads]).reshape(-1, 2)
    dirs = np.array([(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)])
    for ia, a in [pads[i] for i in rng.permutation(len(pads))]:  # nets: to near pads, or off the board
        tw = w if rng.random() < 0.8 else int(w * rng.uniform(1.4, 2.0))
        near = [pads[j] for j in np.argsort(np.abs(centres - a).sum(1), kind="stable")[1:6]]
        targets = [(ib, b) for ib, b in near if rng.random() < 0.7][:2] + [(0, None)]
        for ib, b in targets[: int(rng.integers(1, 4))]:
            if b is not None:
                paths = [_route(a, b, f) for f in rng.permutation([0.0, 1.0, rng.uniform(0.2, 0.8)])]
            else:
                paths = [np.array([a, a + d * 2 * size]) for d in dirs[rng.permutation(8)[:4]]]
            try_paths(paths, tw, (0, ia, ib))
    for _ in range(max(1, round(int(rng.integers(6, 16)) * scale))):
        try_paths([crossing() for _ in range(3)], w)
    return lay


def _pour(rng: np.random.Generator, size: int) -> _Layout:
    """Routed traces sunk in a copper plane with a clearance gap around them (DeepPCB 50600, 77000)."""
    lay = _routed(rng, size, density=0.6)
    region = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        x0, y0 = rng.integers(-size // 4, size // 2, 2)
        x1, y1 = x0 + rng.integers(size // 2, size * 5 // 4), y0 + rng.integers(size // 2, size * 5 // 4)
        c = int(rng.integers(0, size // 6))  # 45-degree chamfer
        poly = [[x0 + c, y0], [x1 - c, y0], [x1, y0 + c], [x1, y1 - c], [x1 - c, y1], [x0 + c, y1],
                [x0, y1 - c], [x0, y0 + c]]
        cv2.fillPoly(region, [np.array(poly, np.int32)], 1)
    gap = int(rng.integers(6, 14))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1, 2 * gap + 1))
    lay.copper |= region & (1 - cv2.dilate(lay.copper, kernel))
    return lay


def _bus(rng: np.random.Generator, size: int) -> _Layout:
    """Parallel strips of mixed widths with an occasional 45-degree jog (DeepPCB 92000)."""
    lay = _Layout.empty(size)
    vertical, u, far = rng.random() < 0.5, int(rng.integers(-20, 30)), size + 60
    while u < size + 10:
        wdt, gap = int(rng.integers(10, 60)), int(rng.integers(8, 50))
        c = u + wdt // 2
        pts = [(c, -60), (c, far)]
        if rng.random() < 0.4:
            y, j = int(rng.integers(80, size - 80)), int(rng.choice([-1, 1]) * rng.integers(10, 40))
            pts = [(c, -60), (c, y), (c + j, y + abs(j)), (c + j, far)]
        arr = np.array(pts, np.int64)
        path = ("path", arr if vertical else arr[:, ::-1], wdt)
        fits = lay.free(path, gap)
        if fits:
            lay.place(path)
        u += wdt + gap if fits else 4
    return lay


class _Injector:
    """Draws defects into the tested copper mask; each is kept only if it does what its class does."""

    def __init__(self, lay: _Layout, rng: np.random.Generator) -> None:
        self.rng, self.size = rng, lay.size
        self.segments = [(a, b, w) for a, b, w in lay.segments  # long enough to cut, and on the board
                         if np.hypot(*(b - a)) >= w + 30 and (np.maximum(a, b) >= 0).all()
                         and (np.minimum(a, b) < lay.size).all()]
        self.tpl, self.cur = lay.copper, lay.copper.copy()
        self.labels = cv2.connectedComponents(self.tpl, connectivity=8)[1]
        self.dt_cu = cv2.distanceTransform(self.tpl, cv2.DIST_L2, 5)
        self.dt_sub = cv2.distanceTransform(1 - self.tpl, cv2.DIST_L2, 5)
        blur = cv2.GaussianBlur(self.tpl.astype(np.float32), (0, 0), 2.0)
        self.gx, self.gy = cv2.Sobel(blur, cv2.CV_32F, 1, 0), cv2.Sobel(blur, cv2.CV_32F, 0, 1)
        inner = np.zeros_like(self.tpl, bool)
        inner[4:-4, 4:-4] = True
        self.edge = np.flatnonzero(inner & (self.tpl > 0) & (self.dt_cu <= 1.0))
        self.cu_pool = np.flatnonzero(inner & (self.dt_cu >= 5))
        self.sub_pool = np.flatnonzero(inner & (self.dt_sub >= 9))
        self.truth: list[GroundTruth] = []

    def _boxes(self) -> list[Box]:
        return [t.box for t in self.truth]

    def _pick(self, pool: np.ndarray) -> np.ndarray:
        return np.array(divmod(int(pool[self.rng.integers(len(pool))]), self.size)[::-1], float)

    def _normal(self, p: np.ndarray, jitter: float) -> np.ndarray:
        """Unit vector out of the copper at edge point p, turned by up to `jitter` radians."""
        x, y = int(p[0]), int(p[1])
        a = math.atan2(-self.gy[y, x], -self.gx[y, x]) + self.rng.uniform(-jitter, jitter)
        return np.array([math.cos(a), math.sin(a)])

    def _commit(self, cls: str, centre: np.ndarray, paint: Paint, labels: set[int] | None = None) -> bool:
        """Paint around `centre`; keep it if it sits wholly in the window, apart from other defects,
        near no conductor but `labels` (when given), and changes connectivity as `cls` must."""
        cx, cy = int(centre[0]), int(centre[1])
        x0, y0 = max(0, cx - _HALF), max(0, cy - _HALF)
        x1, y1 = min(self.size, cx + _HALF), min(self.size, cy + _HALF)
        old = self.cur[y0:y1, x0:x1]
        new = paint(old.copy(), np.array([x0, y0], float))
        diff = new != old
        ys, xs = np.nonzero(diff)
        if len(xs) < 4:
            return False
        h, w = old.shape
        if (xs.min() < 2 and x0 > 0) or (ys.min() < 2 and y0 > 0) or (xs.max() >= w - 2 and x1 < self.size) \
                or (ys.max() >= h - 2 and y1 < self.size):
            return False  # cut off by the window: the connectivity check would be blind
        if labels is not None:
            near = cv2.dilate(diff.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
            if not set(np.unique(self.labels[y0:y1, x0:x1][near & (self.tpl[y0:y1, x0:x1] > 0)])) <= labels:
                return False
        p = [int(v) for v in self.rng.integers(_PAD[0], _PAD[1] + 1, size=4)]
        s = self.size
        box: Box = (max(0, x0 + int(xs.min()) - p[0]), max(0, y0 + int(ys.min()) - p[1]),
                    min(s, x0 + int(xs.max()) + 1 + p[2]), min(s, y0 + int(ys.max()) + 1 + p[3]))
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in self._boxes()):
            return False
        d_cu, d_sub = _count(new, 8) - _count(old, 8), _count(1 - new, 4) - _count(1 - old, 4)
        ok = {"open": d_cu > 0 and d_sub == 0, "short": d_cu < 0, "copper": d_cu == 1 and d_sub == 0,
              "pin-hole": d_sub == 1 and d_cu == 0}.get(cls, d_cu == 0 and d_sub == 0)
        if ok:
            self.cur[y0:y1, x0:x1] = new
            self.truth.append(GroundTruth(cls, box))
        return ok

    def open(self) -> bool:
        """A gap cut square across a plain trace (not inside a pad), its edges a little skewed."""
        if not self.segments:
            return False
        p0, p1, w = self.segments[self.rng.integers(len(self.segments))]
        length = float(np.hypot(*(p1 - p0)))
        if length < w + 30:
            return False
        u = (p1 - p0) / length
        c = p0 + u * self.rng.uniform(w / 2 + 12, length - w / 2 - 12)
        g = self.rng.uniform(4, 18) if self.rng.random() < 0.8 else self.rng.uniform(18, 32)
        span = np.round(c + u * np.arange(-g / 2 - 9, g / 2 + 10)[:, None]).astype(int)  # cut, skew, margin
        if not ((span >= 0) & (span < self.size)).all():
            return False
        x, y = span[:, 0], span[:, 1]
        if not self.tpl[y, x].all() or self.dt_cu[y, x].max() > w / 2 + 1.5:
            return False  # not a plain trace all along: the cut would bite a pad or a junction
        n, lab = np.array([-u[1], u[0]]), self.labels[int(round(c[1])), int(round(c[0]))]
        j, h = self.rng.uniform(-min(3, g / 3), min(3, g / 3), 4), w / 2 + 3
        quad = [c - u * g / 2 + n * h + u * j[0], c + u * g / 2 + n * h + u * j[1],
                c + u * g / 2 - n * h + u * j[2], c - u * g / 2 - n * h + u * j[3]]

        def paint(win: np.ndarray, o: np.ndarray) -> np.ndarray:
            cut = cv2.fillPoly(np.zeros_like(win), [_fixed(quad, o)], 1, shift=_SUB)
            x0, y0 = int(o[0]), int(o[1])
            win[(cut > 0) & (self.labels[y0:y0 + win.shape[0], x0:x0 + win.shape[1]] == lab)] = 0
            return win

        return self._commit("open", c, paint)

    def short(self) -> bool:
        """A thin, slightly bent copper wire from one conductor's edge to the nearest other conductor."""
        p = self._pick(self.edge)
        la, d = self.labels[int(p[1]), int(p[0])], self._normal(p, 0.4)
        ray = np.round(p + d * np.arange(2, 60)[:, None]).astype(int)
        ray = ray[: np.argmin(np.all((ray >= 0) & (ray < self.size), axis=1)) or len(ray)]  # to the border
        hits = np.flatnonzero(self.tpl[ray[:, 1], ray[:, 0]])
        if not len(hits) or self.labels[ray[hits[0], 1], ray[hits[0], 0]] == la:
            return False
        k, q = hits[0] + 2, ray[hits[0]].astype(float)
        lb = self.labels[int(q[1]), int(q[0])]
        mid = (p + q) / 2 + np.array([-d[1], d[0]]) * self.rng.uniform(-0.2, 0.2) * k
        b = int(self.rng.integers(3, 11))
        return self._commit("short", mid, lambda win, o: cv2.polylines(
            win, [_fixed([p - d, mid, q + d], o)], False, 1, thickness=b, shift=_SUB), {int(la), int(lb)})

    def mousebite(self) -> bool:
        """One to four overlapping round bites out of an edge; some only a few pixels, as in DeepPCB."""
        p = self._pick(self.edge)
        n, rng = self._normal(p, 0.2), self.rng
        t = np.array([-n[1], n[0]])
        if rng.random() < 0.15:
            circles = [(p - n * rng.uniform(0, 1), rng.uniform(1.2, 2.2))]
        else:
            k, r0 = int(rng.integers(1, 5)), rng.uniform(3.0, 7.0)
            circles = [(p - n * rng.uniform(0, 0.6 * r0) + t * (i - (k - 1) / 2) * r0 * rng.uniform(1.0, 1.6),
                        r0 * rng.uniform(0.7, 1.1)) for i in range(k)]
        return self._commit("mousebite", p, lambda win, o: _circles(win, circles, o, 0))

    def spur(self) -> bool:
        """A tapering, slightly bent sliver out of an edge, clear of every other conductor."""
        p, rng = self._pick(self.edge), self.rng
        d = self._normal(p, 0.5)
        t = np.array([-d[1], d[0]])
        length, b0, b1 = rng.uniform(7, 26), rng.uniform(4, 11), rng.uniform(1.5, 4)
        mid, tip = p + d * length / 2 + t * rng.uniform(-3, 3), p + d * length
        poly = [p - d * 3 + t * b0 / 2, mid + t * (b0 + b1) / 4, tip + t * b1 / 2,
                tip - t * b1 / 2, mid - t * (b0 + b1) / 4, p - d * 3 - t * b0 / 2]
        blob = [(tip, rng.uniform(1.5, 3.5))] if rng.random() < 0.3 else []
        own = {int(self.labels[int(p[1]), int(p[0])])}
        return self._commit("spur", p, lambda win, o: _circles(
            cv2.fillPoly(win, [_fixed(poly, o)], 1, shift=_SUB), blob, o, 1), own)

    def _blob(self, cls: str, pool: np.ndarray, dt: np.ndarray, value: int, radii: tuple[float, float],
              ) -> bool:
        """One to three overlapping ellipses well inside substrate (copper) or inside copper (pin-hole)."""
        if not len(pool):
            return False
        c, rng = self._pick(pool), self.rng
        r = rng.uniform(*radii)
        if dt[int(c[1]), int(c[0])] < 1.5 * r + 4:
            return False
        ells = [(c + rng.uniform(-r / 2, r / 2, 2), (r * rng.uniform(0.5, 1.0), r * rng.uniform(0.3, 0.8)),
                 rng.uniform(0, 180)) for _ in range(int(rng.integers(1, 4)))]

        def paint(win: np.ndarray, o: np.ndarray) -> np.ndarray:
            for e, (a, b), ang in ells:
                centre, axes = tuple(_fixed(e, o).tolist()), (int(a * 16), int(b * 16))
                cv2.ellipse(win, centre, axes, ang, 0, 360, value, -1, shift=_SUB)
            return win

        return self._commit(cls, c, paint)

    def copper(self) -> bool:
        return self._blob("copper", self.sub_pool, self.dt_sub, 1, (4.0, 17.0))

    def pin_hole(self) -> bool:
        return self._blob("pin-hole", self.cu_pool, self.dt_cu, 0, (3.0, 13.0))


def _fixed(pts: object, origin: np.ndarray) -> np.ndarray:
    """Window-relative fixed-point coordinates for cv2 drawing with shift=_SUB."""
    return np.round((np.asarray(pts, float) - origin) * (1 << _SUB)).astype(np.int32)


def _circles(win: np.ndarray, circles: list, origin: np.ndarray, value: int) -> np.ndarray:
    for c, r in circles:
        cv2.circle(win, tuple(_fixed(c, origin).tolist()), int(r * 16), value, -1, shift=_SUB)
    return win


def _count(mask: np.ndarray, connectivity: int) -> int:
    return cv2.connectedComponents(np.ascontiguousarray(mask), connectivity=connectivity)[0] - 1


def generate_board(seed: int, size: int = 640, *, style: str | None = None) -> SyntheticBoard:
    """A template and a tested board with 3-12 non-overlapping defects; same seed, same pixels."""
    if size < 192:
        raise ValueError(f"size {size} is too small for a board (need >= 192)")
    if style is not None and style not in STYLES:
        raise ValueError(f"style {style!r} is not one of {', '.join(STYLES)}")
    rng = np.random.default_rng(seed)
    style = style or str(rng.choice(STYLES, p=[0.5, 0.25, 0.25]))
    lay = {"routed": _routed, "pour": _pour, "bus": _bus}[style](rng, size)
    for x, y, r in lay.holes:
        cv2.circle(lay.copper, (x, y), r, 0, -1)
    inj = _Injector(lay, rng)
    makers = {"open": inj.open, "short": inj.short, "mousebite": inj.mousebite, "spur": inj.spur,
              "copper": inj.copper, "pin-hole": inj.pin_hole}
    for want in rng.choice(DEFECT_CLASSES, size=int(rng.integers(3, 13))):  # fall back to other classes
        order = [str(want)] + [str(c) for c in rng.permutation(DEFECT_CLASSES) if c != want]
        next((cls for cls in order if any(makers[cls]() for _ in range(40))), None)
    if len(inj.truth) < 3:
        raise RuntimeError(f"seed {seed}: could only place {len(inj.truth)} defects")
    tpl, tested = ((1 - m) * np.uint8(SUBSTRATE) for m in (inj.tpl, inj.cur))  # copper 0, substrate 255
    return SyntheticBoard(tpl, tested, list(inj.truth), seed, style)


def write_dataset(out_dir: str | Path, n_boards: int, seed: int = 0, group_size: int | None = None, *,
                  size: int = 640, test_groups: int = 1) -> Path:
    """Write boards in DeepPCB's layout under out_dir/PCBData; returns out_dir (what holds PCBData).

    Boards come in groups (default: two halves) named group9GGGG; a group mostly keeps one style, as a
    DeepPCB group is one board design. The last `test_groups` groups are listed in test.txt (which is
    empty when there is one group), the others in trainval.txt, so group-wise splits can be tested.
    """
    group_size = group_size or max(1, math.ceil(n_boards / 2))
    n_groups = math.ceil(max(n_boards, 0) / group_size) if group_size > 0 else 0
    for name, ok in (("n_boards", n_boards >= 1), ("group_size", 1 <= group_size <= 1000),  # 3 digits
                     ("n_boards/group_size", n_groups <= 9999), ("test_groups", test_groups >= 0)):
        if not ok:
            raise ValueError(f"{name} out of range: n_boards={n_boards}, group_size={group_size}, "
                             f"test_groups={test_groups}")
    pcb = Path(out_dir) / "PCBData"
    lists: dict[str, list[str]] = {"trainval": [], "test": []}
    with tqdm(total=n_boards, desc="synthetic boards", unit="board", disable=n_boards < 50) as bar:
        for i in range(n_boards):
            g, k = divmod(i, group_size)
            gid, grng = f"{90000 + g:05d}", np.random.default_rng([seed, g, k])
            style = STYLES[g % len(STYLES)] if grng.random() < 0.7 else str(grng.choice(STYLES))
            board = generate_board(int(grng.integers(2**31)), size, style=style)
            name, group = f"{gid}{k:03d}", pcb / f"group{gid}"
            img_dir, ann_dir = group / gid, group / f"{gid}_not"
            img_dir.mkdir(parents=True, exist_ok=True)
            ann_dir.mkdir(parents=True, exist_ok=True)
            for suffix, img in (("test", board.tested), ("temp", board.template)):
                path = img_dir / f"{name}_{suffix}.jpg"
                if not cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                    raise OSError(f"could not write {path}")
            rows = [f"{x1} {y1} {x2} {y2} {type_id_from_class(t.cls)}\n"
                    for t in board.ground_truth for x1, y1, x2, y2 in [t.box]]
            (ann_dir / f"{name}.txt").write_text("".join(rows))
            split = "test" if n_groups > 1 and g >= n_groups - test_groups else "trainval"
            lists[split].append(f"group{gid}/{gid}/{name}.jpg group{gid}/{gid}_not/{name}.txt")
            bar.update()
    for split, lines in lists.items():  # DeepPCB's list files end without a newline
        (pcb / f"{split}.txt").write_text("\n".join(lines))
    return Path(out_dir)
