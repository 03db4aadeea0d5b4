"""Board verdicts from scored detections: FAIL, REVIEW or PASS, by per-class thresholds and a review band."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import DEFECT_CLASSES, Defect, Verdict


@dataclass(frozen=True)
class VerdictPolicy:
    """FAIL if any detection reaches its class threshold; REVIEW if one is within ``review_band`` below it."""

    score_threshold: float = 0.5
    per_class: Mapping[str, float] = field(default_factory=dict)
    review_band: float = 0.15

    def __post_init__(self) -> None:
        if not 0.0 < self.score_threshold <= 1.0:
            raise ConfigError(f"score_threshold {self.score_threshold} is not in (0, 1]")
        if not 0.0 <= self.review_band < self.score_threshold:
            raise ConfigError(f"review_band {self.review_band} must be in [0, score_threshold)")
        for cls, value in self.per_class.items():
            if cls not in DEFECT_CLASSES or not 0.0 < value <= 1.0:
                raise ConfigError(f"threshold for {cls!r}={value}: need a defect class and a value in (0, 1]")

    def threshold(self, cls: str) -> float:
        return float(self.per_class.get(cls, self.score_threshold))

    def reported(self, detections: Sequence[Defect]) -> list[Defect]:
        """The detections that count as defects."""
        return [d for d in detections if d.confidence >= self.threshold(d.cls)]

    def judge(self, detections: Sequence[Defect]) -> Verdict:
        if any(d.confidence >= self.threshold(d.cls) for d in detections):
            return Verdict.FAIL
        if any(d.confidence >= self.threshold(d.cls) - self.review_band for d in detections):
            return Verdict.REVIEW
        return Verdict.PASS
