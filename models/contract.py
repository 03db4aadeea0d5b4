"""The model contract: everything a box needs to run a model, carried inside the ONNX file's metadata.

One JSON document under the metadata key ``pcb_inspect.contract``; checked when a model loads, so a model file
from another project, or a newer contract version, fails with one clear line instead of wrong answers.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pcb_inspect.inspect.records import CROP_CHANNELS
from pcb_inspect.inspect.errors import ModelError
from pcb_inspect.inspect.records import CLASSIFIER_CLASSES

METADATA_KEY = "pcb_inspect.contract"
CONTRACT_VERSION = 1


def _in_range(where: str, name: str, value: Any, low: float, high: float, *, whole: bool = False,
              low_open: bool = False, high_open: bool = False) -> None:
    """Range-check one contract field, so a bad model fails at load with one line, not inside onnxruntime."""
    ok_type = isinstance(value, int) if whole else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value):
        raise ModelError(f"{where}: {name} {value!r} is not a {'whole ' if whole else ''}number")
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ModelError(f"{where}: {name} {value!r} is not in {lo}{low}, {high}{hi}")


@dataclass
class ModelContract:
    """What the model expects and how its scores become verdicts."""

    class_names: list[str] = field(default_factory=lambda: list(CLASSIFIER_CLASSES))
    input_size: int = 48
    input_channels: list[str] = field(default_factory=lambda: list(CROP_CHANNELS))
    normalisation: str = (
        "binarised images as -1/+1, signed difference in {-1,0,1}, region-count deltas clipped to +-2 and halved"
    )
    crop_margin: int = 4
    proposals: dict[str, Any] = field(default_factory=dict)  # ProposalConfig fields
    registration: dict[str, Any] = field(default_factory=dict)  # RegistrationConfig fields
    score_threshold: float = 0.5  # confidence (1 - P(no defect)) at which a detection is a defect
    thresholds: dict[str, float] = field(default_factory=dict)  # per-class overrides of score_threshold
    review_band: float = 0.15  # scores within this below a class threshold make the board REVIEW
    nms_iou: float = 0.2  # overlapping detections above this IoU are one defect
    arch: str = ""
    version: str = ""
    training_data: dict[str, Any] = field(default_factory=dict)  # fingerprint: list, groups, sha256
    metrics: dict[str, Any] = field(default_factory=dict)  # held-out results at export time
    contract_version: int = CONTRACT_VERSION

    def validate(self, where: str = "model") -> ModelContract:
        if self.contract_version > CONTRACT_VERSION:
            raise ModelError(
                f"{where}: contract version {self.contract_version} is newer than this pcb-inspect "
                f"understands ({CONTRACT_VERSION}); upgrade pcb-inspect"
            )
        if list(self.class_names) != list(CLASSIFIER_CLASSES):
            raise ModelError(f"{where}: class_names {self.class_names} differ from {list(CLASSIFIER_CLASSES)}")
        if list(self.input_channels) != list(CROP_CHANNELS):
            raise ModelError(f"{where}: input_channels {self.input_channels} differ from {list(CROP_CHANNELS)}")
        _in_range(where, "input_size", self.input_size, 8, 512, whole=True)
        _in_range(where, "crop_margin", self.crop_margin, 0, 64, whole=True)
        _in_range(where, "score_threshold", self.score_threshold, 0.0, 1.0, low_open=True)
        _in_range(where, "nms_iou", self.nms_iou, 0.0, 1.0)
        _in_range(where, "review_band", self.review_band, 0.0, float(self.score_threshold), high_open=True)
        if not isinstance(self.thresholds, dict):
            raise ModelError(f"{where}: thresholds must be an object of class: value, got {self.thresholds!r}")
        for cls, value in self.thresholds.items():
            if cls not in CLASSIFIER_CLASSES[:-1]:
                raise ModelError(f"{where}: threshold for {cls!r}: not one of {', '.join(CLASSIFIER_CLASSES[:-1])}")
            _in_range(where, f"thresholds.{cls}", value, 0.0, 1.0, low_open=True)
        for name in ("proposals", "registration", "training_data", "metrics"):
            if not isinstance(getattr(self, name), dict):
                raise ModelError(f"{where}: {name} must be a JSON object")
        return self

    def threshold(self, cls: str) -> float:
        return float(self.thresholds.get(cls, 0.5))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "model") -> ModelContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{where}: metadata {METADATA_KEY} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ModelError(f"{where}: metadata {METADATA_KEY} is not a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown and int(data.get("contract_version", 0)) <= CONTRACT_VERSION:
            raise ModelError(f"{where}: unknown contract fields {sorted(unknown)}")
        try:
            contract = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ModelError(f"{where}: bad contract ({exc})") from None
        return contract.validate(where)


def set_metrics(model_path: str | Path, metrics: dict[str, Any]) -> None:
    """Replace the metrics in an ONNX model's contract (needs the ``onnx`` package, as exporting does)."""
    import onnx

    model_path = Path(model_path)
    proto = onnx.load(str(model_path))
    entries = [p for p in proto.metadata_props if p.key == METADATA_KEY]
    if not entries:
        raise ModelError(f"{model_path}: no {METADATA_KEY} metadata")
    contract = ModelContract.from_json(entries[0].value, str(model_path))
    contract.metrics = metrics
    entries[0].value = contract.to_json()
    tmp = model_path.with_name(model_path.name + ".partial")
    onnx.save(proto, str(tmp))
    tmp.replace(model_path)
