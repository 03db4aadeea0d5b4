"""The records every stage passes on: defects, ground truth and inspection results.

They validate their shape once, when built, so downstream code can trust them.
"""

from __future__ import annotations

import math
import numbers
import re
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from pcb_inspect.inspect.errors import ConfigError

#: The six DeepPCB defect types, in the dataset's own order (type id = index + 1).
DEFECT_CLASSES: tuple[str, ...] = ("open", "short", "mousebite", "spur", "copper", "pin-hole")
#: The classifier's extra class for a candidate that is not a defect (a false call of the proposal stage).
NO_DEFECT = "no-defect"
#: Everything the classifier can answer, in output order.
CLASSIFIER_CLASSES: tuple[str, ...] = (*DEFECT_CLASSES, NO_DEFECT)

#: The classifier's input planes, in order (the model contract names them; crops builds them).
CROP_CHANNELS: tuple[str, ...] = ("tested", "template", "difference", "delta_regions_1", "delta_regions_0")

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


_SHA256 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[0-9a-f]{32}")


def _finite(value: object, what: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"inspection {what}: need a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < low:
        raise ConfigError(f"inspection {what}: {value!r} is not a finite number >= {low}")
    return value


def _defects(values: object, what: str) -> list[Defect]:
    if not isinstance(values, list):
        raise ConfigError(f"inspection {what}: need a list of defects, got {type(values).__name__}")
    out = []
    for d in values:
        if isinstance(d, dict):
            try:
                d = Defect(str(d["cls"]), float(d["confidence"]), tuple(d["box"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"inspection {what}: bad defect {d!r} ({exc})") from None
        if not isinstance(d, Defect):
            raise ConfigError(f"inspection {what}: {d!r} is not a Defect")
        out.append(d)
    return out


@dataclass
class Inspection:
    """The result of inspecting one board; JSON on the wire, a row in a store, the same fields.

    Only the engine's ``Inspector.inspect`` makes these (``failed`` for a board that could not be inspected),
    so every consumer (the line, predict, eval, bench, the demo) reads the same verdict. It checks itself when
    built: a record that exists is a record that can be trusted.

    ``defects`` are the reported ones (at or above their class threshold); ``below_threshold`` are the weaker
    detections kept after suppression (they explain a REVIEW and give evaluation its precision-recall curve).
    ``time`` is when the frame was captured (epoch seconds); ``stage_ms`` has ``wait`` (capture to start of
    inspection, when a loop ran it) and the engine's stages; ``latency_ms`` is the engine's own time.
    ``registration`` is the fit: shift, angle, scale and whether the fit converged.
    """

    board_id: str
    verdict: Verdict
    defects: list[Defect] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)  # the key images and feedback are stored under
    below_threshold: list[Defect] = field(default_factory=list)
    source: str = ""
    frame_index: int = 0
    time: float = 0.0
    station: str = ""
    model_sha256: str = ""
    latency_ms: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    registration: dict[str, float] = field(default_factory=dict)
    candidates: int = 0
    error: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.verdict, Verdict):
            try:
                self.verdict = Verdict(self.verdict)
            except ValueError:
                raise ConfigError(f"verdict {self.verdict!r} is not one of {', '.join(Verdict)}") from None
        if not isinstance(self.id, str) or not _ID.fullmatch(self.id):
            raise ConfigError(f"inspection id: {self.id!r} is not 32 lowercase hex digits")
        for name in ("board_id", "source", "station", "error", "model_sha256"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"inspection {name}: need text, got {getattr(self, name)!r}")
        if self.model_sha256 and not _SHA256.fullmatch(self.model_sha256):
            raise ConfigError(f"inspection model_sha256: {self.model_sha256!r} is not 64 lowercase hex digits")
        for name in ("frame_index", "candidates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ConfigError(f"inspection {name}: need a whole number >= 0, got {value!r}")
            setattr(self, name, int(value))
        self.time = _finite(self.time, "time")
        self.latency_ms = _finite(self.latency_ms, "latency_ms")
        self.stage_ms = {str(k): _finite(v, f"stage_ms[{k!r}]") for k, v in dict(self.stage_ms).items()}
        self.registration = {str(k): _finite(v, f"registration[{k!r}]", -math.inf)
                             for k, v in dict(self.registration).items()}
        self.defects = _defects(self.defects, "defects")
        self.below_threshold = _defects(self.below_threshold, "below_threshold")
        if self.verdict is Verdict.ERROR:
            if not self.error.strip():
                raise ConfigError("inspection: an ERROR verdict needs its reason in error")
            if self.defects:
                raise ConfigError("inspection: an ERROR verdict reports no defects")
        elif self.error:
            raise ConfigError(f"inspection: verdict {self.verdict} with an error ({self.error!r}); use ERROR")
        if self.verdict is Verdict.PASS and self.defects:
            raise ConfigError(f"inspection: PASS with {len(self.defects)} reported defect(s)")
        if self.verdict is Verdict.FAIL and not self.defects:
            raise ConfigError("inspection: FAIL without a reported defect")

    @classmethod
    def failed(cls, reason: str, **fields: object) -> Inspection:
        """A board that could not be inspected: ERROR with its reason, never an exception and never a PASS."""
        return cls(verdict=Verdict.ERROR, error=" ".join(str(reason).split()) or "unknown error",
                   **{"board_id": "", **fields})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = str(self.verdict)
        for key in ("defects", "below_threshold"):
            d[key] = [{"cls": x["cls"], "confidence": x["confidence"], "box": list(x["box"])} for x in d[key]]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> Inspection:
        """The inverse of ``to_dict`` (JSON from a peer or a store), validated like any other record."""
        if not isinstance(data, dict):
            raise ConfigError(f"inspection: need a JSON object, got {type(data).__name__}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"inspection: unknown fields {sorted(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"inspection: {exc}") from None
