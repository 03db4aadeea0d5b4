"""The inspection engine: register -> propose -> classify -> verdict, one code path for eval, predict and demo.

The front end (binarise, register, warp, propose, crop) needs only numpy and OpenCV; scoring goes through a
:class:`~pcb_inspect.inspect.backends.Backend`, so the number measured in evaluation is what the line gets.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from pcb_inspect.inspect.crops import build_crops
from pcb_inspect.inspect.errors import ConfigError, ImageError
from pcb_inspect.inspect.proposals import Candidates, ProposalConfig, binarize, propose
from pcb_inspect.inspect.records import CLASSIFIER_CLASSES, DEFECT_CLASSES, Defect, Inspection, box_iou
from pcb_inspect.inspect.registration import (
    Registration,
    RegistrationConfig,
    covers_image,
    register,
    valid_region,
    warp_template,
)
from pcb_inspect.inspect.verdict import VerdictPolicy

#: Detections below this score are dropped before suppression: never reported, and too weak to matter for AP.
MIN_KEEP_SCORE = 0.01


@dataclass
class FrontEnd:
    """What the classifier needs from one pair."""

    tested_bin: np.ndarray
    template_bin: np.ndarray  # warped into the tested image's pixels, re-aligned locally around candidates
    registration: Registration
    candidates: Candidates
    stage_ms: dict[str, float] = field(default_factory=dict)


def _check_pair(tested: np.ndarray, template: np.ndarray) -> None:
    for name, image in (("tested image", tested), ("template", template)):
        if not isinstance(image, np.ndarray) or image.ndim != 2 or image.dtype != np.uint8:
            raise ImageError(f"{name}: need a 2-D uint8 gray image, got {getattr(image, 'shape', type(image))}")
    if tested.shape != template.shape:
        raise ImageError(f"tested image {tested.shape} and template {template.shape} differ in size")


def front_end(
    tested: np.ndarray,
    template: np.ndarray,
    registration: RegistrationConfig = RegistrationConfig(),
    proposals: ProposalConfig = ProposalConfig(),
) -> FrontEnd:
    """Binarise both, register the template onto the tested image, and propose candidates there."""
    _check_pair(tested, template)
    t0 = time.perf_counter()
    reg = register(tested, template, registration)
    t1 = time.perf_counter()
    tested_bin = binarize(tested)
    template_bin = warp_template(binarize(template), reg, cv2.INTER_NEAREST)
    if not covers_image(tested.shape, reg):
        # where the template has no pixels, let the tested image stand in for it: no difference, no candidate
        np.copyto(template_bin, tested_bin, where=valid_region(tested.shape, reg) == 0)
    candidates = propose(tested_bin, template_bin, proposals)
    t2 = time.perf_counter()
    stage_ms = {"register": (t1 - t0) * 1e3, "propose": (t2 - t1) * 1e3}
    return FrontEnd(tested_bin, candidates.template_bin, reg, candidates, stage_ms)


def suppress_duplicates(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy class-agnostic suppression: one defect, one report (fragments of a long open are one open)."""
    order = np.argsort(-scores, kind="stable").tolist()
    rows = boxes.tolist()  # Python ints: box_iou on numpy scalars is several times slower
    kept: list[int] = []
    for i in order:
        if all(box_iou(rows[i], rows[k]) <= iou_threshold for k in kept):
            kept.append(i)
    return kept


def scores_to_detections(
    boxes: np.ndarray, probabilities: np.ndarray, nms_iou: float, min_score: float = MIN_KEEP_SCORE
) -> list[Defect]:
    """Per candidate: class = most likely defect class, confidence = 1 - P(no defect); then suppression."""
    if len(boxes) == 0:
        return []
    if probabilities.shape != (len(boxes), len(CLASSIFIER_CLASSES)):
        raise ConfigError(f"classifier returned shape {probabilities.shape}, expected ({len(boxes)}, 7)")
    defect_p = probabilities[:, : len(DEFECT_CLASSES)]
    cls_idx = defect_p.argmax(axis=1)
    conf = np.clip(1.0 - probabilities[:, -1], 0.0, 1.0)
    live = np.nonzero(conf >= min_score)[0]
    kept = suppress_duplicates(boxes[live], conf[live], nms_iou)
    return [
        Defect(DEFECT_CLASSES[cls_idx[live[k]]], float(conf[live[k]]), tuple(int(v) for v in boxes[live[k]]))
        for k in kept
    ]


@dataclass
class Prepared:
    """A board ready for the classifier: candidate boxes, their crops and the time each stage took."""

    boxes: np.ndarray
    crops: np.ndarray
    stage_ms: dict[str, float]


@dataclass(frozen=True)
class PairPreparer:
    """Everything before the classifier, as a picklable callable: runs in worker threads or processes."""

    registration: RegistrationConfig
    proposals: ProposalConfig
    input_size: int
    crop_margin: int

    def __call__(self, tested: np.ndarray, template: np.ndarray) -> Prepared:
        fe = front_end(tested, template, self.registration, self.proposals)
        t0 = time.perf_counter()
        c = fe.candidates
        crops = build_crops(fe.tested_bin, fe.template_bin, c.diff, c.boxes, c.tight, self.input_size, self.crop_margin)
        return Prepared(c.boxes, crops, dict(fe.stage_ms, crop=(time.perf_counter() - t0) * 1e3))

    def from_record(self, record) -> Prepared:  # noqa: ANN001 - anything with load_images()
        """Decode a pair from disk and prepare it, timing the decode too."""
        t0 = time.perf_counter()
        tested, template = record.load_images()
        decode_ms = (time.perf_counter() - t0) * 1e3
        prepared = self(tested, template)
        prepared.stage_ms["decode"] = decode_ms
        return prepared


class Inspector:
    """Inspects tested/template pairs with one backend and the settings its model contract carries."""

    def __init__(self, backend, policy: VerdictPolicy | None = None) -> None:  # noqa: ANN001 - any Backend
        self.backend = backend
        c = backend.contract
        self.preparer = PairPreparer(
            RegistrationConfig(**_as_tuples(c.registration)), ProposalConfig(**c.proposals), c.input_size, c.crop_margin
        )
        self.policy = policy or VerdictPolicy(
            score_threshold=c.score_threshold,
            per_class=dict(c.thresholds),
            review_band=c.review_band,
        )
        self.nms_iou = c.nms_iou

    def prepare(self, tested: np.ndarray, template: np.ndarray) -> Prepared:
        """Everything before the classifier (numpy and OpenCV only: safe to run in worker threads)."""
        return self.preparer(tested, template)

    def classify(self, prepared: Prepared) -> tuple[list[Defect], dict[str, float]]:
        """All of a board's candidates in one batched backend call, then duplicate suppression."""
        t0 = time.perf_counter()
        probabilities = self.backend.run(prepared.crops)
        t1 = time.perf_counter()
        detections = scores_to_detections(prepared.boxes, probabilities, self.nms_iou)
        stage_ms = dict(prepared.stage_ms, classify=(t1 - t0) * 1e3, verdict=(time.perf_counter() - t1) * 1e3)
        return detections, stage_ms

    def detect(self, tested: np.ndarray, template: np.ndarray) -> tuple[list[Defect], dict[str, float]]:
        """All detections after suppression (scores down to MIN_KEEP_SCORE), with per-stage milliseconds."""
        return self.classify(self.prepare(tested, template))

    def inspect(self, tested: np.ndarray, template: np.ndarray, board_id: str = "", source: str = "") -> Inspection:
        """One board: reported defects and its verdict."""
        t0 = time.perf_counter()
        detections, stage_ms = self.detect(tested, template)
        return Inspection(
            board_id=board_id,
            verdict=self.policy.judge(detections),
            defects=self.policy.reported(detections),
            source=source,
            time=time.time(),
            model_sha256=getattr(self.backend, "model_sha256", ""),
            latency_ms=(time.perf_counter() - t0) * 1e3,
            stage_ms=stage_ms,
        )


def _as_tuples(d: dict) -> dict:
    """JSON turns tuples into lists; dataclass configs want them back (they are frozen and hashable)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def configs_as_dict(registration: RegistrationConfig, proposals: ProposalConfig) -> dict:
    return {"registration": asdict(registration), "proposals": asdict(proposals)}
