"""The line's counters: verdicts, drops, rate and capture-to-verdict latency, safe to read from any thread."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from pcb_inspect.inspect.records import Inspection, Verdict

#: Latency percentiles and the rate are over a recent window, so they follow the line, not the whole shift.
WINDOW_BOARDS = 2000
RATE_WINDOW_S = 10.0


class LineStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.frames = 0  # captured
        self.dropped = 0  # captured but never inspected (latest-frame policy)
        self.counts = {v: 0 for v in Verdict}
        self.defects_by_class: dict[str, int] = {}
        self._latency: deque[float] = deque(maxlen=WINDOW_BOARDS)  # capture to verdict, ms
        self._all_latency: list[float] = []  # whole run, for the summary (floats: 8 bytes a board)
        self._done_at: deque[float] = deque(maxlen=WINDOW_BOARDS)
        self.last_inspection: Inspection | None = None
        self.first_done = 0.0
        self.last_done = 0.0

    def captured(self) -> None:
        with self._lock:
            self.frames += 1

    def drop(self, n: int = 1) -> None:
        with self._lock:
            self.dropped += n

    def record(self, inspection: Inspection, done_at: float | None = None) -> None:
        done_at = time.time() if done_at is None else done_at
        latency = max(0.0, (done_at - inspection.time) * 1e3)
        with self._lock:
            self.counts[inspection.verdict] += 1
            for d in inspection.defects:
                self.defects_by_class[d.cls] = self.defects_by_class.get(d.cls, 0) + 1
            self._latency.append(latency)
            self._all_latency.append(latency)
            self._done_at.append(done_at)
            self.first_done = self.first_done or done_at
            self.last_done = done_at
            self.last_inspection = inspection

    @property
    def inspected(self) -> int:
        return sum(self.counts.values())

    def snapshot(self) -> dict:
        now = time.time()
        with self._lock:
            recent = [t for t in self._done_at if now - t <= RATE_WINDOW_S]
            span = (now - recent[0]) if len(recent) > 1 else 0.0
            lat = np.array(self._latency) if self._latency else np.zeros(1)
            inspected = sum(self.counts.values())
            judged = inspected - self.counts[Verdict.ERROR]
            last = self.last_inspection
            return {
                "frames": self.frames,
                "inspected": inspected,
                **{str(v).lower(): n for v, n in self.counts.items()},
                "dropped": self.dropped,
                "yield_pct": 100.0 * self.counts[Verdict.PASS] / judged if judged else None,
                "boards_per_s": (len(recent) - 1) / span if span > 0 else 0.0,
                "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99)),
                "defects_by_class": dict(self.defects_by_class),
                "uptime_s": now - self.started,
                "last": None if last is None else {
                    "id": last.id, "verdict": str(last.verdict), "board_id": last.board_id,
                    "defects": len(last.defects), "time": last.time, "error": last.error},
            }

    def summary(self) -> dict:
        """The whole run: counts, boards/s from the first to the last verdict, latency over every board."""
        with self._lock:
            lat = np.array(self._all_latency) if self._all_latency else np.zeros(1)
            inspected = sum(self.counts.values())
            span = self.last_done - self.first_done
            return {
                "frames": self.frames, "inspected": inspected, "dropped": self.dropped,
                **{str(v).lower(): n for v, n in self.counts.items()},
                "boards_per_s": (inspected - 1) / span if span > 0 and inspected > 1 else 0.0,
                "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            }
