"""The records every stage passes on: defects, ground truth and inspection results.

They validate their shape once, when built, so downstream code can trust them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from pcb_inspect.inspect.errors import ConfigError

#: The six DeepPCB defect types, in the dataset's own order (type id = index + 1).
DEFECT_CLASSES: tuple[str, ...] = ("open", "short", "mousebite", "spur", "copper", "pin-hole")
#: The classifier's extra class for a candidate that is not a defect (a false call of the proposal stage).
NO_DEFECT = "no-defect"
#: Everything the classifier can answer, in output order.
CLASSIFIER_CLASSES: tuple[str, ...] = (*DEFECT_CLASSES, NO_DEFECT)

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels of the tested image, x2 > x1, y2 > y1


def class_from_type_id(type_id: int) -> str:
    """DeepPCB's numeric type (1..6) to a class name."""
    if not 1 <= type_id <= len(DEFECT_CLASSES):
        raise ValueError(f"defect type {type_id} is not one of 1..{len(DEFECT_CLASSES)}")
    return DEFECT_CLASSES[type_id - 1]


def type_id_from_class(name: str) -> int:
    """Class name to DeepPCB's numeric type (1..6)."""
    try:
        return DEFECT_CLASSES.index(name) + 1
    except ValueError:
        raise ValueError(f"class {name!r} is not one of {', '.join(DEFECT_CLASSES)}") from None


def _check_box(box: Box, what: str) -> Box:
    if len(box) != 4:
        raise ValueError(f"{what}: box needs 4 numbers x1,y1,x2,y2, got {box!r}")
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"{what}: box {box!r} is empty (need x2 > x1 and y2 > y1)")
    return (x1, y1, x2, y2)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes given as corners."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class GroundTruth:
    """One annotated defect."""

    cls: str
    box: Box

    def __post_init__(self) -> None:
        if self.cls not in DEFECT_CLASSES:
            raise ValueError(f"ground truth class {self.cls!r} is not one of {', '.join(DEFECT_CLASSES)}")
        object.__setattr__(self, "box", _check_box(self.box, "ground truth"))


@dataclass(frozen=True)
class Defect:
    """One reported defect: class, confidence in [0, 1], box in the tested image's pixels."""

    cls: str
    confidence: float
    box: Box

    def __post_init__(self) -> None:
        if self.cls not in DEFECT_CLASSES:
            raise ValueError(f"defect class {self.cls!r} is not one of {', '.join(DEFECT_CLASSES)}")
        if not (0.0 <= self.confidence <= 1.0) or math.isnan(self.confidence):
            raise ValueError(f"defect confidence {self.confidence!r} is not in [0, 1]")
        object.__setattr__(self, "box", _check_box(self.box, "defect"))


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    REVIEW = "REVIEW"
    ERROR = "ERROR"


@dataclass
class Inspection:
    """The result of inspecting one board; JSON on the wire, a row in a store, the same fields."""

    board_id: str
    verdict: Verdict
    defects: list[Defect] = field(default_factory=list)
    source: str = ""
    frame_index: int = 0
    time: float = 0.0
    station: str = ""
    model_sha256: str = ""
    latency_ms: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    error: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.verdict, Verdict):
            try:
                self.verdict = Verdict(self.verdict)
            except ValueError:
                raise ConfigError(f"verdict {self.verdict!r} is not one of {', '.join(Verdict)}") from None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = str(self.verdict)
        return d
