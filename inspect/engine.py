"""The inspection engine: register -> propose -> classify -> verdict, one code path for eval, predict and demo.

The front end (binarise, register, warp, propose, crop) needs only numpy and OpenCV; scoring goes through a
:class:`~pcb_inspect.inspect.backends.Backend`, so the number measured in evaluation is what the line gets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from pcb_inspect.inspect.crops import build_crops
from pcb_inspect.inspect.errors import ConfigError, ImageError, ModelError, PcbInspectError
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
    registration: dict[str, float] = field(default_factory=dict)
    difference: float = 0.0  # share of the board's pixels where the registered pair differs


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
        difference = cv2.countNonZero(c.diff.view(np.uint8)) / c.diff.size
        return Prepared(c.boxes, crops, dict(fe.stage_ms, crop=(time.perf_counter() - t0) * 1e3),
                        registration_summary(fe.registration), difference)

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
        where = str(getattr(backend, "path", "model"))
        try:
            self.preparer = PairPreparer(
                RegistrationConfig(**_as_tuples(c.registration)), ProposalConfig(**c.proposals), c.input_size,
                c.crop_margin,
            )
            self.policy = policy or VerdictPolicy(
                score_threshold=c.score_threshold,
                per_class=dict(c.thresholds),
                review_band=c.review_band,
            )
        except (ConfigError, TypeError) as exc:  # settings the contract carries, checked before any board
            raise ModelError(f"{where}: contract {exc}") from None
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

    def inspect(
        self,
        tested: np.ndarray,
        template: np.ndarray,
        *,
        board_id: str = "",
        source: str = "",
        frame_index: int = 0,
        station: str = "",
        captured: float | None = None,
        stage_ms: dict[str, float] | None = None,
    ) -> Inspection:
        """One board: reported defects and its verdict, the one result every command and the line use.

        Never raises for a bad board: an image that cannot be used, a registration that leaves the pair
        differing over more than ``proposals.max_difference`` of the board, or a runtime failure gives an
        ERROR inspection naming the reason. ``captured`` is the frame's capture time (default now);
        ``stage_ms`` adds stages measured before the engine (decode, wait).
        """
        t0 = time.perf_counter()
        meta = {"board_id": board_id, "source": source, "frame_index": frame_index, "station": station,
                "captured": captured, "stage_ms": stage_ms}
        try:
            prepared = self.prepare(tested, template)
        except Exception as exc:  # noqa: BLE001 - a board that cannot be inspected is an ERROR, never the end
            return self._failed(exc, t0, **meta)
        return self.conclude(prepared, t0=t0, **meta)

    def conclude(
        self,
        prepared: Prepared,
        *,
        t0: float | None = None,
        board_id: str = "",
        source: str = "",
        frame_index: int = 0,
        station: str = "",
        captured: float | None = None,
        stage_ms: dict[str, float] | None = None,
    ) -> Inspection:
        """Classify a prepared board and judge it: the second half of :meth:`inspect`, for callers that
        prepare in one process and classify in another (a GPU fed by CPU workers)."""
        t0 = time.perf_counter() if t0 is None else t0
        meta = {"board_id": board_id, "source": source, "frame_index": frame_index, "station": station,
                "time": time.time() if captured is None else captured,
                "model_sha256": getattr(self.backend, "model_sha256", "")}
        stages = dict(stage_ms or {}, **prepared.stage_ms)
        found = {"registration": prepared.registration, "candidates": len(prepared.boxes)}
        limit = self.preparer.proposals.max_difference
        if prepared.difference > limit:
            why = ("registration to the template failed" if not prepared.registration.get("ok", 1.0)
                   else "a corrupt image, a wrong template or a failed registration")
            return Inspection.failed(
                f"tested image differs from its template over {prepared.difference:.1%} of the board (limit "
                f"{limit:.1%}): {why}",
                stage_ms=stages, latency_ms=(time.perf_counter() - t0) * 1e3, **found, **meta)
        try:
            detections, classify_ms = self.classify(prepared)
        except Exception as exc:  # noqa: BLE001 - a runtime failure is this board's ERROR
            return Inspection.failed(failure_reason(exc), stage_ms=stages,
                                     latency_ms=(time.perf_counter() - t0) * 1e3,
                                     **found, **meta)
        stages.update(classify_ms)
        t1 = time.perf_counter()
        reported = self.policy.reported(detections)
        verdict = self.policy.judge(detections)
        stages["verdict"] += (time.perf_counter() - t1) * 1e3
        return Inspection(
            verdict=verdict, defects=reported, below_threshold=[d for d in detections if d not in reported],
            latency_ms=(time.perf_counter() - t0) * 1e3, stage_ms=stages, **found, **meta)

    def _failed(self, exc: Exception, t0: float, *, captured: float | None, stage_ms: dict | None,
                **meta: object) -> Inspection:
        return Inspection.failed(failure_reason(exc), time=time.time() if captured is None else captured,
                                 model_sha256=getattr(self.backend, "model_sha256", ""), stage_ms=dict(stage_ms or {}),
                                 latency_ms=(time.perf_counter() - t0) * 1e3, **meta)

    def inspect_loaded(self, load: Callable[[], tuple[np.ndarray, np.ndarray]], **meta: object) -> Inspection:
        """Decode a pair with ``load()`` (timed as ``decode``) and inspect it; a pair that cannot be read is
        an ERROR inspection naming the file."""
        t0 = time.perf_counter()
        meta.setdefault("captured", None)
        meta.setdefault("stage_ms", None)
        try:
            tested, template = load()
        except Exception as exc:  # noqa: BLE001 - unreadable input is that board's ERROR
            return self._failed(exc, t0, **meta)
        meta["stage_ms"] = dict(meta["stage_ms"] or {}, decode=(time.perf_counter() - t0) * 1e3)
        return self.inspect(tested, template, **meta)


def failure_reason(exc: Exception) -> str:
    """One line for an inspection's error: our own errors already say what and where; others get their type."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, PcbInspectError) and text else f"{type(exc).__name__}: {text or 'no detail'}"


def registration_summary(reg: Registration) -> dict[str, float]:
    """The fit in numbers an operator can read: shift (px), angle (degrees), scale, and whether it converged."""
    scale = float(np.sqrt(abs(np.linalg.det(reg.matrix[:, :2]))))
    dx, dy = reg.shift
    return {"dx": dx, "dy": dy, "angle_deg": reg.angle_deg, "scale": scale, "ok": 1.0 if reg.ok else 0.0}


def _as_tuples(d: dict) -> dict:
    """JSON turns tuples into lists; dataclass configs want them back (they are frozen and hashable)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def configs_as_dict(registration: RegistrationConfig, proposals: ProposalConfig) -> dict:
    return {"registration": asdict(registration), "proposals": asdict(proposals)}
