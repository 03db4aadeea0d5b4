"""The shift on the operator page: verdict counts, defects by class (Pareto) and yield over time.

Kept in memory from the live feed (each board costs a few dictionary updates, never a query), seeded once at
start from the results database with the boards of this shift that an earlier process inspected. At a shift
boundary (``--shift-starts``, local time) the tally starts again. The page reads :meth:`ShiftTally.snapshot`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter, deque
from datetime import datetime, timedelta
from pathlib import Path

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import DEFECT_CLASSES, Inspection, Verdict

DEFAULT_SHIFT_STARTS = "06:00,14:00,22:00"
BUCKET_S = 10  # yield is counted in buckets this long; the page gets them merged to at most TREND_POINTS
TREND_POINTS = 36
RECENT_BOARDS = 500  # the Pareto of "the last N boards"


def parse_shift_starts(text: str) -> list[tuple[int, int]]:
    """``"06:00,14:00,22:00"`` to [(6, 0), (14, 0), (22, 0)]; one-line ConfigError otherwise."""
    starts = []
    for part in str(text).split(","):
        part = part.strip()
        hh, sep, mm = part.partition(":")
        if not sep or not hh.isdigit() or not mm.isdigit() or not (0 <= int(hh) < 24 and 0 <= int(mm) < 60):
            raise ConfigError(f"--shift-starts {text!r}: need HH:MM[,HH:MM...] in local time, e.g. "
                              f"{DEFAULT_SHIFT_STARTS}")
        starts.append((int(hh), int(mm)))
    if len(set(starts)) != len(starts):
        raise ConfigError(f"--shift-starts {text!r}: a time is given twice")
    return sorted(starts)


def shift_start(starts: list[tuple[int, int]], now: float | None = None) -> float:
    """The epoch time the current shift began: the latest start at or before ``now`` (local time)."""
    t = datetime.fromtimestamp(time.time() if now is None else now)
    day = datetime(t.year, t.month, t.day)
    candidates = [day + timedelta(days=d, hours=h, minutes=m) for d in (-1, 0) for h, m in starts]
    return max(c for c in candidates if c <= t).timestamp()


class ShiftTally:
    """Counts for this shift and the last ``recent`` boards; thread-safe (the feed writes, HTTP reads)."""

    def __init__(self, starts: list[tuple[int, int]], recent: int = RECENT_BOARDS) -> None:
        self.starts = starts
        self._lock = threading.Lock()
        self._recent: deque[tuple[str, tuple[str, ...]]] = deque(maxlen=recent)
        self._reset(shift_start(starts))

    def _reset(self, since: float) -> None:
        self.since = since
        self._next = self._following(since)
        self.counts: Counter[str] = Counter({str(v): 0 for v in Verdict})
        self.classes: Counter[str] = Counter()
        self.buckets: dict[int, list[int]] = {}  # bucket -> [pass, judged (not ERROR), all]

    def _following(self, since: float) -> float:
        """When the shift that began at ``since`` ends (the next start after it)."""
        t = datetime.fromtimestamp(since)
        day = datetime(t.year, t.month, t.day)
        later = [day + timedelta(days=d, hours=h, minutes=m) for d in (0, 1) for h, m in self.starts]
        return min(c for c in later if c > t).timestamp()

    def _roll(self, now: float) -> None:
        if now >= self._next:
            self._reset(shift_start(self.starts, now))

    def add(self, inspection: Inspection) -> None:
        when = inspection.time or time.time()
        verdict = str(inspection.verdict)
        classes = tuple(d.cls for d in inspection.defects)
        with self._lock:
            self._roll(time.time())
            self._recent.append((verdict, classes))
            if when < self.since:
                return
            self._count(when, verdict, 1)
            self.classes.update(classes)

    def _count(self, when: float, verdict: str, n: int) -> None:
        self.counts[verdict] += n
        b = self.buckets.setdefault(int(when // BUCKET_S), [0, 0, 0])
        b[0] += n if verdict == Verdict.PASS else 0
        b[1] += n if verdict != Verdict.ERROR else 0
        b[2] += n

    def seed(self, db_path: str | Path, until: float) -> None:
        """Add this shift's boards stored before ``until`` (the ones an earlier process inspected)."""
        path = Path(db_path)
        if not path.is_file():
            return
        with self._lock:
            since = self.since
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
        except sqlite3.Error:
            return
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < 1:
                return
            rows = conn.execute("SELECT CAST(time / ? AS INTEGER), verdict, COUNT(*) FROM inspections "
                                "WHERE time >= ? AND time < ? GROUP BY 1, 2",
                                (BUCKET_S, since, until)).fetchall()
            classes = conn.execute("SELECT d.cls, COUNT(*) FROM defects d "
                                   "JOIN inspections i ON i.id = d.inspection_id "
                                   "WHERE d.reported = 1 AND i.time >= ? AND i.time < ? GROUP BY d.cls",
                                   (since, until)).fetchall()
        except sqlite3.Error:
            return
        finally:
            conn.close()
        with self._lock:
            if self.since != since:  # the shift ended meanwhile
                return
            for bucket, verdict, n in rows:
                self._count(bucket * BUCKET_S, verdict, n)
            self.classes.update(dict(classes))

    def summary(self, now: float | None = None) -> dict:
        """Counts and yield only: what every live event carries."""
        with self._lock:
            self._roll(time.time() if now is None else now)
            counts = dict(self.counts)
            since = self.since
        judged = counts["PASS"] + counts["FAIL"] + counts["REVIEW"]
        return {"since": since, "counts": {**counts, "total": sum(counts.values())},
                "yield_pct": 100.0 * counts["PASS"] / judged if judged else None}

    def snapshot(self, now: float | None = None) -> dict:
        """Counts, yield, Pareto (shift and last N boards) and the yield trend, as the page draws them."""
        now = time.time() if now is None else now
        with self._lock:
            self._roll(now)
            counts = dict(self.counts)
            classes = dict(self.classes)
            buckets = sorted(self.buckets.items())
            recent = list(self._recent)
            since = self.since
        judged = counts["PASS"] + counts["FAIL"] + counts["REVIEW"]
        recent_classes = Counter(c for _, cs in recent for c in cs)
        return {
            "since": since,
            "counts": {**counts, "total": sum(counts.values())},
            "yield_pct": 100.0 * counts["PASS"] / judged if judged else None,
            "pareto_shift": _pareto(classes),
            "pareto_recent": _pareto(recent_classes),
            "recent_boards": len(recent),
            "trend": _trend(buckets),
        }


def _pareto(counts: dict[str, int]) -> list[dict]:
    """Classes by count, most first (then in DeepPCB's order), each with its cumulative share."""
    total = sum(counts.values())
    order = sorted((c for c in DEFECT_CLASSES if counts.get(c)),
                   key=lambda c: (-counts[c], DEFECT_CLASSES.index(c)))
    out, running = [], 0
    for c in order:
        running += counts[c]
        out.append({"cls": c, "count": counts[c], "cumulative_pct": 100.0 * running / total})
    return out


def _trend(buckets: list[tuple[int, list[int]]]) -> list[dict]:
    """Yield per interval: the 10 s buckets merged into at most TREND_POINTS intervals of equal length."""
    if not buckets:
        return []
    first, last = buckets[0][0], buckets[-1][0]
    per = max(1, -(-(last - first + 1) // TREND_POINTS))  # buckets per point, rounded up
    merged: dict[int, list[int]] = {}
    for b, (passed, judged, total) in buckets:
        m = merged.setdefault((b - first) // per, [0, 0, 0])
        m[0] += passed
        m[1] += judged
        m[2] += total
    return [{"start": (first + k * per) * BUCKET_S, "seconds": per * BUCKET_S, "boards": total,
             "yield_pct": 100.0 * passed / judged if judged else None}
            for k, (passed, judged, total) in sorted(merged.items())]
