"""Inspections to feed sinks: valid records of each verdict, with defects where the verdict has them."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from pcb_inspect.inspect.records import Defect, Inspection, Verdict


def inspection(verdict: str = "FAIL", n_defects: int = 2, n_below: int = 1, index: int = 0,
               **fields) -> Inspection:
    """A valid inspection: FAIL with ``n_defects``, REVIEW/PASS with only below-threshold ones, ERROR bare."""
    verdict = Verdict(verdict)
    reported = [Defect("short", 0.9 - 0.01 * k, (10 + k, 20, 40 + k, 50)) for k in range(n_defects)]
    below = [Defect("spur", 0.31 + 0.01 * k, (100, 100 + k, 130, 140 + k)) for k in range(n_below)]
    base = dict(board_id=f"board{index}", verdict=verdict, source="synthetic://", frame_index=index,
                time=time.time() + index * 1e-3, station="line-1", model_sha256="ab" * 32, latency_ms=7.25,
                stage_ms={"wait": 0.5, "register": 2.125, "classify": 3.0},
                candidates=n_defects + n_below + 2,
                registration={"dx": -1.5, "dy": 0.25, "angle": 0.001, "scale": 1.0, "converged": 1.0})
    if verdict is Verdict.FAIL:
        base.update(defects=reported, below_threshold=below)
    elif verdict in (Verdict.REVIEW, Verdict.PASS):
        base.update(below_threshold=below)
    else:
        base.update(error="registration did not converge")
    return Inspection(**{**base, **fields})


@pytest.fixture
def make_inspection() -> Callable[..., Inspection]:
    return inspection
