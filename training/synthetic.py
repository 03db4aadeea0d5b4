"""Synthetic DeepPCB-like board pairs: a defect-free template and a tested image with known defects.

Why: tests, benchmarks and pre-training need pairs whose ground truth is exact and free. They imitate
DeepPCB: 640x640 binarised scans at ~48 px/mm, copper black (0) on white substrate (255), the six defect
types at DeepPCB's sizes, boxes padded 10-12 px a side around the differing pixels, the same files on disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pcb_inspect.inspect.records import DEFECT_CLASSES, Box, GroundTruth, type_id_from_class

COPPER, SUBSTRATE = 0, 255
#: Board looks: traces between pads; the same inside a copper pour; parallel strips (DeepPCB group 92000).
STYLES: tuple[str, ...] = ("routed", "pour", "bus")
JPEG_QUALITY = 95
_PAD = (10, 12)  # GT box padding per side, inclusive range, as DeepPCB's annotators drew them
_HALF = 64  # half-size of the window a defect is drawn and checked in
_SUB = 4  # cv2 fixed-point bits for sub-pixel drawing
Shape = tuple  # ("circle", cx, cy, r) | ("rect"|"oval", cx, cy, hw, hh) | ("path", pts, width)


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
    """Copper being drawn plus an id per element, so clearance checks can ignore a trace's own pads."""

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
        """True when `shape` grown by `grow` px touches only elements in `allowed` (0 = bare substrate)."""
        if shape[0] == "path" and len(shape[1]) > 2:  # per segment: far smaller boxes than the whole path's
            return all(self.free(("path", shape[1][i:i + 2], shape[2]), grow, allowed) for i in range(len(shape[1]) - 1))
        x0, y0, x1, y1 = _bbox(shape, grow, self.size)
        if x1 <= x0 or y1 <= y0:
            return True
        _draw(self.scratch, shape, grow, 1)
        roi = self.scratch[y0:y1, x0:x1]
        if not cv2.countNonZero(cv2.bitwise_and(roi, self.copper[y0:y1, x0:x1])):
            roi[:] = 0
            return True
        hit = self.ids[y0:y1, x0:x1][roi > 0]
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
    kind = shape[0]
    if kind == "path":
        cv2.polylines(img, [shape[1].astype(np.int32)], False, value, thickness=shape[2] + 2 * grow)
    elif kind == "circle":
        cv2.circle(img, (int(shape[1]), int(shape[2])), int(shape[3]) + grow, value, -1)
    elif kind == "rect":
        cx, cy, hw, hh = (int(v) for v in shape[1:])
        cv2.rectangle(img, (cx - hw - grow, cy - hh - grow), (cx + hw + grow, cy + hh + grow), value, -1)
    else:  # oval (stadium): a thick line with round caps
        cx, cy, hw, hh = (int(v) for v in shape[1:])
        r = min(hw, hh)
        a, b = ((cx - hw + r, cy), (cx + hw - r, cy)) if hw >= hh else ((cx, cy - hh + r), (cx, cy + hh - r))
        cv2.line(img, a, b, value, thickness=2 * (r + grow) + 1)


def _route(a: np.ndarray, b: np.ndarray, f: float) -> np.ndarray:
    """A PCB-style path from a to b: axis-parallel runs (fraction f of them first) and one exact 45-degree run."""
    (ax, ay), (bx, by) = (int(v) for v in a), (int(v) for v in b)
    dx, dy = bx - ax, by - ay
    k = min(abs(dx), abs(dy))
    gx, gy = (dx > 0) - (dx < 0), (dy > 0) - (dy < 0)
    fx, fy = round((dx - gx * k) * f), round((dy - gy * k) * f)
    pts = [(ax, ay), (ax + fx, ay + fy), (ax + fx + gx * k, ay + fy + gy * k), (bx, by)]
    return np.array([p for i, p in enumerate(pts) if i == 0 or p != pts[i - 1]], np.int64)


def _offset(pts: np.ndarray, dist: float) -> np.ndarray:
    """The polyline moved sideways by `dist` with mitred corners, for bundles of parallel traces."""
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
        dx = hw + gap // 2
        return [(("rect", cx - dx, cy, hw, hh), 0), (("rect", cx + dx, cy, hw, hh), 0)]
    n, r = int(rng.integers(2, 7)), int(rng.integers(11, 20))
    pitch = 2 * r + clr + int(rng.integers(2, 14))
    pad = rng.choice(["circle", "rect", "oval"])
    drill = int(r * rng.uniform(0.35, 0.5)) if pad != "rect" or rng.random() < 0.5 else 0
    rows = 2 if rng.random() < 0.4 else 1
    sep = pitch * int(rng.integers(2, 5))
    vertical = rng.random() < 0.5
    out = []
    for j in range(rows):
        for i in range(n):
            u, v = cx + (i - (n - 1) / 2) * pitch, cy + j * sep
            x, y = (v, u) if vertical else (u, v)
            s: Shape = ("circle", int(x), int(y), r) if pad == "circle" else (pad, int(x), int(y), r, int(r * 1.4))
            out.append((s, drill))
    return out


def _routed(rng: np.random.Generator, size: int, density: float = 1.0) -> _Layout:
    """Bundles, pads and vias joined by 45-degree traces, traces crossing the board, all with clearances."""
    lay = _Layout.empty(size)
    w, clr, far = int(rng.integers(8, 18)), int(rng.integers(8, 18)), size + 40
    scale = density * (size / 640) ** 2

    def crossing() -> np.ndarray:
        side, t = int(rng.integers(4)), rng.integers(0, size, 2)
        ends = [np.array([(t[i], -40), (t[i], far), (-40, t[i]), (far, t[i])][k % 4], np.int64)
                for i, k in enumerate((side, side + int(rng.integers(1, 4))))]
        return _route(ends[0], ends[1], rng.uniform(0, 1))

    def try_paths(paths: list[np.ndarray], width: int, allowed: tuple[int, ...] = (0,)) -> bool:
        for pts in paths:
            if len(pts) > 1 and lay.free(("path", pts, width), clr, allowed):
                lay.place(("path", pts, width))
                return True
        return False

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
    for ia, a in [pads[i] for i in rng.permutation(len(pads))]:
        tw = w if rng.random() < 0.8 else int(w * rng.uniform(1.4, 2.0))
        near = [pads[j] for j in np.argsort(np.abs(centres - a).sum(1), kind="stable")[1:6]]
        targets = [(ib, b) for ib, b in near if rng.random() < 0.7][:2] + [(0, None)]
        for ib, b in targets[: int(rng.integers(1, 4))]:
            paths = [_route(a, b, f) for f in rng.permutation([0.0, 1.0, rng.uniform(0.2, 0.8)])] if b is not None \
                else [np.array([a, a + d * 2 * size]) for d in dirs[rng.permutation(8)[:4]]]
            try_paths(paths, tw, (0, ia, ib))
    for _ in range(max(1, round(int(rng.integers(6, 16)) * scale))):
        try_paths([crossing() for _ in range(3)], w)
    return lay


def _pour(rng: np.random.Generator, size: int) -> _Layout:
    """Routed traces sunk in a copper plane with a clearance gap around them (DeepPCB groups 50600, 77000)."""
    lay = _routed(rng, size, density=0.6)
    region = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        x0, y0 = rng.integers(-size // 4, size // 2, 2)
        x1, y1 = x0 + rng.integers(size // 2, size * 5 // 4), y0 + rng.integers(size // 2, size * 5 // 4)
        c = int(rng.integers(0, size // 6))  # 45-degree chamfer
        poly = np.array([[x0 + c, y0], [x1 - c, y0], [x1, y0 + c], [x1, y1 - c], [x1 - c, y1], [x0 + c, y1],
                         [x0, y1 - c], [x0, y0 + c]], np.int32)
        cv2.fillPoly(region, [poly], 1)
    gap = int(rng.integers(6, 14))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1, 2 * gap + 1))
    lay.copper |= region & (1 - cv2.dilate(lay.copper, kernel))
    return lay


def _bus(rng: np.random.Generator, size: int) -> _Layout:
    """Parallel strips of mixed widths with an occasional 45-degree jog (DeepPCB group 92000)."""
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
        if lay.free(path, gap):
            lay.place(path)
            u += wdt + gap
        else:
            u += 4
    return lay


class _Injector:
    """Draws defects into the tested copper mask; each defect is checked for what it must do to topology."""

    def __init__(self, lay: _Layout, rng: np.random.Generator) -> None:
        self.rng, self.size, self.segments = rng, lay.size, lay.segments
        self.tpl = lay.copper
        self.cur = lay.copper.copy()
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
        self.boxes: list[GroundTruth] = []

    def _pick(self, pool: np.ndarray) -> np.ndarray:
        return np.array(divmod(int(pool[self.rng.integers(len(pool))]), self.size)[::-1], float)

    def _normal(self, p: np.ndarray, jitter: float) -> np.ndarray:
        x, y = int(p[0]), int(p[1])
        n = -np.array([self.gx[y, x], self.gy[y, x]], float)
        a = math.atan2(n[1], n[0]) + self.rng.uniform(-jitter, jitter)
        return np.array([math.cos(a), math.sin(a)])

    def _commit(self, cls: str, centre: np.ndarray, paint, allowed_labels: set[int] | None = None) -> bool:
        """Apply `paint(window, origin)` around `centre`, keep it only if it is clean, isolated and does `cls`."""
        cx, cy = int(centre[0]), int(centre[1])
        x0, y0 = max(0, cx - _HALF), max(0, cy - _HALF)
        x1, y1 = min(self.size, cx + _HALF), min(self.size, cy + _HALF)
        old = self.cur[y0:y1, x0:x1]
        new = paint(old.copy(), np.array([x0, y0], float))
        if new is None:
            return False
        diff = new != old
        ys, xs = np.nonzero(diff)
        if len(xs) < 4:
            return False
        h, w = old.shape
        if (xs.min() < 2 and x0 > 0) or (ys.min() < 2 and y0 > 0) or (xs.max() >= w - 2 and x1 < self.size) \
                or (ys.max() >= h - 2 and y1 < self.size):
            return False  # not wholly inside the window: the topology check below would be blind
        if allowed_labels is not None:
            grown = cv2.dilate(diff.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
            if not set(np.unique(self.labels[y0:y1, x0:x1][grown & (self.tpl[y0:y1, x0:x1] > 0)])) <= allowed_labels:
                return False
        pad = self.rng.integers(_PAD[0], _PAD[1] + 1, size=4)
        box: Box = (max(0, x0 + int(xs.min()) - int(pad[0])), max(0, y0 + int(ys.min()) - int(pad[1])),
                    min(self.size, x0 + int(xs.max()) + 1 + int(pad[2])), min(self.size, y0 + int(ys.max()) + 1 + int(pad[3])))
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in (g.box for g in self.boxes)):
            return False
        d_cu = _count(new, 8) - _count(old, 8)
        d_sub = _count(1 - new, 4) - _count(1 - old, 4)
        ok = {"open": d_cu > 0 and d_sub == 0, "short": d_cu < 0, "copper": d_cu == 1 and d_sub == 0,
              "pin-hole": d_sub == 1 and d_cu == 0}.get(cls, d_cu == 0 and d_sub == 0)
        if ok:
            self.cur[y0:y1, x0:x1] = new
            self.boxes.append(GroundTruth(cls, box))
        return ok

    def open(self) -> bool:
        if not self.segments:
            return False
        p0, p1, w = self.segments[self.rng.integers(len(self.segments))]
        length = float(np.hypot(*(p1 - p0)))
        if length < w + 30:
            return False
        u = (p1 - p0) / length
        c = p0 + u * self.rng.uniform(w / 2 + 12, length - w / 2 - 12)
        x, y = int(round(c[0])), int(round(c[1]))
        if not (4 <= x < self.size - 4 and 4 <= y < self.size - 4) or not self.tpl[y, x] or self.dt_cu[y, x] > w / 2 + 1.5:
            return False
        n, lab = np.array([-u[1], u[0]]), self.labels[y, x]
        g = self.rng.uniform(4, 18) if self.rng.random() < 0.8 else self.rng.uniform(18, 32)
        j = self.rng.uniform(-min(3, g / 3), min(3, g / 3), 4)
        h = w / 2 + 3

        def paint(win: np.ndarray, o: np.ndarray) -> np.ndarray:
            quad = [c - u * g / 2 + n * h + u * j[0], c + u * g / 2 + n * h + u * j[1],
                    c + u * g / 2 - n * h + u * j[2], c - u * g / 2 - n * h + u * j[3]]
            cut = np.zeros_like(win)
            cv2.fillPoly(cut, [np.round((np.array(quad) - o) * 16).astype(np.int32)], 1, shift=_SUB)
            lab_win = self.labels[int(o[1]):int(o[1]) + win.shape[0], int(o[0]):int(o[0]) + win.shape[1]]
            win[(cut > 0) & (lab_win == lab)] = 0
            return win

        return self._commit("open", c, paint)

    def short(self) -> bool:
        p = self._pick(self.edge)
        la, d = self.labels[int(p[1]), int(p[0])], self._normal(p, 0.4)
        ray = np.round(p + d * np.arange(2, 60)[:, None]).astype(int)
        ray = ray[: np.argmin(np.all((ray >= 0) & (ray < self.size), axis=1)) or len(ray)]  # stop at the border
        hits = np.flatnonzero(self.tpl[ray[:, 1], ray[:, 0]])
        if not len(hits) or self.labels[ray[hits[0], 1], ray[hits[0], 0]] == la:
            return False
        k, q = hits[0] + 2, ray[hits[0]].astype(float)
        lb = self.labels[int(q[1]), int(q[0])]
        mid = (p + q) / 2 + np.array([-d[1], d[0]]) * self.rng.uniform(-0.2, 0.2) * k
        b = int(self.rng.integers(3, 11))

        def paint(win: np.ndarray, o: np.ndarray) -> np.ndarray:
            pts = np.round((np.array([p - d, mid, q + d]) - o) * 16).astype(np.int32)
            cv2.polylines(win, [pts], False, 1, thickness=b, shift=_SUB)
            return win

        return self._commit("short", mid, paint, {int(la), int(lb)})

    def mousebite(self) -> bool:
        p = self._pick(self.edge)
        n, rng = self._normal(p, 0.2), self.rng
        t = np.array([-n[1], n[0]])
        if rng.random() < 0.15:  # DeepPCB has bites of only 4-8 differing pixels
            circles = [(p - n * rng.uniform(0, 1), rng.uniform(1.2, 2.2))]
        else:
            k, r0 = int(rng.integers(1, 5)), rng.uniform(3.0, 7.0)
            circles = [(p - n * rng.uniform(0, 0.6 * r0) + t * (i - (k - 1) / 2) * r0 * rng.uniform(1.0, 1.6),
                        r0 * rng.uniform(0.7, 1.1)) for i in range(k)]
        return self._commit("mousebite", p, lambda win, o: _circles(win, circles, o, 0))

    def spur(self) -> bool:
        p, rng = self._pick(self.edge), self.rng
        d = self._normal(p, 0.5)
        t = np.array([-d[1], d[0]])
        length, b0, b1 = rng.uniform(7, 26), rng.uniform(4, 11), rng.uniform(1.5, 4)
        mid = p + d * length / 2 + t * rng.uniform(-3, 3)
        tip = p + d * length
        poly = [p - d * 3 + t * b0 / 2, mid + t * (b0 + b1) / 4, tip + t * b1 / 2,
                tip - t * b1 / 2, mid - t * (b0 + b1) / 4, p - d * 3 - t * b0 / 2]
        blob = [(tip, rng.uniform(1.5, 3.5))] if rng.random() < 0.3 else []

        def paint(win: np.ndarray, o: np.ndarray) -> np.ndarray:
            cv2.fillPoly(win, [np.round((np.array(poly) - o) * 16).astype(np.int32)], 1, shift=_SUB)
            return _circles(win, blob, o, 1)

        return self._commit("spur", p, paint, {int(self.labels[int(p[1]), int(p[0])])})

    def _blob(self, cls: str, pool: np.ndarray, dt: np.ndarray, value: int, r_range: tuple[float, float]) -> bool:
        if not len(pool):
            return False
        c, rng = self._pick(pool), self.rng
        r = rng.uniform(*r_range)
        if dt[int(c[1]), int(c[0])] < 1.5 * r + 4:
            return False
        ells = [(c + rng.uniform(-r / 2, r / 2, 2), (r * rng.uniform(0.5, 1.0), r * rng.uniform(0.3, 0.8)),
                 rng.uniform(0, 180)) for _ in range(int(rng.integers(1, 4)))]

        def paint(win: np.ndarray, o: np.ndarray) -> np.ndarray:
            for e, (a, b), ang in ells:
                cv2.ellipse(win, tuple(int(v) for v in np.round((e - o) * 16)), (int(a * 16), int(b * 16)),
                            ang, 0, 360, value, -1, shift=_SUB)
            return win

        return self._commit(cls, c, paint)

    def copper(self) -> bool:
        return self._blob("copper", self.sub_pool, self.dt_sub, 1, (4.0, 17.0))

    def pin_hole(self) -> bool:
        return self._blob("pin-hole", self.cu_pool, self.dt_cu, 0, (3.0, 13.0))


def _circles(win: np.ndarray, circles: list, origin: np.ndarray, value: int) -> np.ndarray:
    for c, r in circles:
        cv2.circle(win, tuple(int(v) for v in np.round((c - origin) * 16)), int(r * 16), value, -1, shift=_SUB)
    return win


def _count(mask: np.ndarray, connectivity: int) -> int:
    return cv2.connectedComponents(np.ascontiguousarray(mask), connectivity=connectivity)[0] - 1


def generate_board(seed: int, size: int = 640, *, style: str | None = None) -> SyntheticBoard:
    """A template and a tested board with 3-12 non-overlapping defects; the same seed gives the same pixels."""
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
    for want in rng.choice(DEFECT_CLASSES, size=int(rng.integers(3, 13))):
        order = [str(want)] + [str(c) for c in rng.permutation(DEFECT_CLASSES) if c != want]
        next((cls for cls in order if any(makers[cls]() for _ in range(40))), None)
    if len(inj.boxes) < 3:
        raise RuntimeError(f"seed {seed}: could only place {len(inj.boxes)} defects")
    tpl, tested = (np.where(m > 0, COPPER, SUBSTRATE).astype(np.uint8) for m in (inj.tpl, inj.cur))
    return SyntheticBoard(tpl, tested, list(inj.boxes), seed, style)


def write_dataset(out_dir: str | Path, n_boards: int, seed: int = 0, group_size: int | None = None, *,
                  size: int = 640, test_groups: int = 1) -> Path:
    """Write boards in DeepPCB's own layout under out_dir/PCBData, so DeepPCB readers take it unchanged.

    Boards come in groups (default two halves); a group favours one style, like DeepPCB's groups are one
    board design. The last `test_groups` groups go to test.txt (empty with a single group), the rest to
    trainval.txt. Returns out_dir, the folder that holds PCBData (as the deeppcb folder does).
    """
    group_size = group_size or max(1, math.ceil(n_boards / 2))
    n_groups = math.ceil(max(n_boards, 0) / group_size) if group_size > 0 else 0
    for name, ok in (("n_boards", n_boards >= 1), ("group_size", 1 <= group_size <= 1000),  # 3-digit index
                     ("n_boards/group_size", n_groups <= 9999), ("test_groups", test_groups >= 0)):
        if not ok:
            raise ValueError(f"{name} out of range: n_boards={n_boards} group_size={group_size} test_groups={test_groups}")
    root = Path(out_dir)
    lists: dict[str, list[str]] = {"trainval": [], "test": []}
    with tqdm(total=n_boards, desc="synthetic boards", unit="board", disable=n_boards < 50) as bar:
        for i in range(n_boards):
            g, k = divmod(i, group_size)
            gid = f"{90000 + g:05d}"
            grng = np.random.default_rng([seed, g, k])
            style = STYLES[g % len(STYLES)] if grng.random() < 0.7 else str(grng.choice(STYLES))
            board = generate_board(int(grng.integers(2**31)), size, style=style)
            img_dir, ann_dir = root / "PCBData" / f"group{gid}" / gid, root / "PCBData" / f"group{gid}" / f"{gid}_not"
            img_dir.mkdir(parents=True, exist_ok=True)
            ann_dir.mkdir(parents=True, exist_ok=True)
            name = f"{gid}{k:03d}"
            for suffix, img in (("test", board.tested), ("temp", board.template)):
                if not cv2.imwrite(str(img_dir / f"{name}_{suffix}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                    raise OSError(f"could not write {img_dir / name}_{suffix}.jpg")
            rows = [" ".join(map(str, (*gt.box, type_id_from_class(gt.cls)))) + "\n" for gt in board.ground_truth]
            (ann_dir / f"{name}.txt").write_text("".join(rows))
            split = "test" if n_groups > 1 and g >= n_groups - test_groups else "trainval"
            lists[split].append(f"group{gid}/{gid}/{name}.jpg group{gid}/{gid}_not/{name}.txt")
            bar.update()
    for split, lines in lists.items():  # DeepPCB's list files have no trailing newline
        (root / "PCBData" / f"{split}.txt").write_text("\n".join(lines))
    return root
