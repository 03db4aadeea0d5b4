"""The demo conveyor: synthetic boards, moved and degraded as a line camera sees them, at a camera's pace.

``synthetic://?fps=30&defect_rate=0.3&seed=0&boards=16&size=640``. A pool of ``boards`` distinct designs is
generated lazily (15-65 ms per 640 px board, once) and cached. Each frame picks a design; with
probability ``defect_rate`` it shows the tested board (truth: its defects, moved with the image), otherwise
the defect-free template (truth: none). Every frame carries its design's template, and ``product`` is the
design's pool index, so a template folder keyed by product works too.

Per-frame cost: ``move_and_degrade`` spends ~80% of its ~5 ms (640 px) drawing float64 Gaussian noise, so the
conveyor asks it for the move, blur and gain/offset only (~0.9 ms) and adds sensor noise of the same
distribution from a bank drawn once, cut at a random offset (~0.1 ms): ~1 ms a frame in all.
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np

from pcb_inspect.inspect.degrade import move_and_degrade, transform_ground_truth
from pcb_inspect.inspect.records import GroundTruth
from pcb_inspect.inspect.sources.base import Frame, Source, SourceError
from pcb_inspect.inspect.sources.uri import Param, parse_params, redact, split_query
from pcb_inspect.inspect.synthetic import SyntheticBoard, generate_board

SYNTHETIC_PARAMS = (
    Param("fps", float, 30.0, 0.0, 1000.0),  # 0: as fast as the reader takes them (offline)
    Param("defect_rate", float, 0.3, 0.0, 1.0),
    Param("seed", int, 0, 0, 2**32 - 1),
    Param("boards", int, 16, 1, 10000),
    Param("size", int, 640, 192, 4096),
)
NOISE_SIGMA = (2.0, 8.0)  # move_and_degrade's default sensor noise range
_NOISE_MARGIN = 128  # the bank is this much larger than a frame each way: 128^2 distinct cuts
_ATTEMPTS = 8  # a seed that cannot place 3 defects is replaced by the next one


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # shared by every frame of this design: nobody may draw on it
    return a


class SyntheticSource(Source):
    """Synthetic boards at ``fps`` frames a second (0: unpaced); live when paced."""

    def __init__(self, uri: str = "synthetic://", *, fps: float = 30.0, defect_rate: float = 0.3,
                 seed: int = 0, boards: int = 16, size: int = 640, timeout_s: float = 2.0) -> None:
        super().__init__(redact(uri))
        self.fps, self.defect_rate, self.seed = float(fps), float(defect_rate), int(seed)
        self.boards, self.size, self.timeout_s = int(boards), int(size), float(timeout_s)
        self.live = self.fps > 0
        self._pool: dict[int, SyntheticBoard] = {}
        self._rng = np.random.default_rng(self.seed)
        self._noise: np.ndarray | None = None
        self._pending: tuple[np.ndarray, SyntheticBoard, int, list[GroundTruth]] | None = None
        self._due = 0.0

    @classmethod
    def from_uri(cls, uri: str, *, loop: bool = False, timeout_s: float = 2.0) -> SyntheticSource:
        body, query = split_query(uri, "synthetic://")
        if body.strip("/"):
            raise SourceError(f"{redact(uri)}: unexpected {body!r} after synthetic:// "
                              f"(give synthetic://?fps=30&defect_rate=0.3&seed=0&boards=16&size=640)")
        p = parse_params(uri, query, SYNTHETIC_PARAMS)
        return cls(uri, fps=float(p["fps"]), defect_rate=float(p["defect_rate"]), seed=int(p["seed"]),
                   boards=int(p["boards"]), size=int(p["size"]), timeout_s=timeout_s)

    def open(self) -> None:
        if self._noise is None:
            bank = self.size + _NOISE_MARGIN
            rng = np.random.default_rng([self.seed, 1])
            self._noise = rng.standard_normal((bank, bank), dtype=np.float32)
        self._due = time.monotonic()

    def board(self, i: int) -> SyntheticBoard:
        """Design ``i`` of the pool, generated on first use; the same seed gives the same pool."""
        if i not in self._pool:
            for attempt in range(_ATTEMPTS):
                seed = int(np.random.SeedSequence([self.seed, i, attempt]).generate_state(1)[0])
                try:
                    b = generate_board(seed, size=self.size)
                except RuntimeError:  # too crowded to place 3 defects: next seed
                    continue
                _frozen(b.template)
                _frozen(b.tested)
                self._pool[i] = b
                break
            else:
                raise SourceError(f"{self.uri}: no board for pool index {i} after {_ATTEMPTS} seeds")
        return self._pool[i]

    def _make(self, bank: np.ndarray) -> tuple[np.ndarray, SyntheticBoard, int, list[GroundTruth]]:
        rng = self._rng
        i = int(rng.integers(self.boards))
        b = self.board(i)
        defective = bool(rng.random() < self.defect_rate)
        src = b.tested if defective else b.template
        moved = move_and_degrade(src, rng, noise_sigma=(0.0, 0.0))
        truth = transform_ground_truth(b.ground_truth, moved.matrix, src.shape) if defective else []
        oy, ox = (int(v) for v in rng.integers(_NOISE_MARGIN, size=2))
        noise = bank[oy:oy + self.size, ox:ox + self.size]
        sigma = float(rng.uniform(*NOISE_SIGMA))
        image = cv2.addWeighted(moved.image, 1.0, noise, sigma, 0.0, dtype=cv2.CV_8U)
        return image, b, i, truth

    def _wait(self) -> bool:
        """Sleep until the frame is due, at most ``timeout_s``; True when it is due."""
        wait = self._due - time.monotonic()
        if wait > self.timeout_s:
            time.sleep(self.timeout_s)
            return False
        if wait > 0:
            time.sleep(wait)
        # Like a camera's clock: the next frame is the next tick after now, so a late reader gets no burst
        # of catch-up frames and an on-time one no drift.
        period = 1.0 / self.fps
        now = time.monotonic()
        self._due += period * (1 + max(0, math.floor((now - self._due) / period)))
        return True

    def read(self) -> Frame | None:
        if self._noise is None:
            raise SourceError(f"{self.uri}: read before open()")
        if self._pending is None:
            self._pending = self._make(self._noise)  # made before the wait: its cost hides in the period
        if self.fps > 0 and not self._wait():
            return None
        image, b, i, truth = self._pending
        self._pending = None
        frame = Frame(index=self.index, timestamp=time.time(), source=self.uri, image=image,
                      board_id=f"syn-{self.index:06d}", product=str(i), template=b.template, truth=truth)
        self.index += 1
        return frame

    def close(self) -> None:
        self._pending = None
