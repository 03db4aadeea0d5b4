"""Detection metrics under the DeepPCB benchmark protocol, so our numbers compare with published ones.

DeepPCB (Tang et al., "On-line PCB Defect Detector On A New PCB Defect Dataset") counts a detection as
correct when its IoU with a ground-truth box *of the same class* is larger than 0.33, and reports
precision, recall, F-score and AP. Its evaluation script is the ICDAR 2015 robust-reading script with
small changes, so AP here is that script's AP: rank every detection by confidence, add the precision
at the rank of each true positive, divide by the number of ground-truth boxes (no precision envelope).
VOC all-point interpolated AP is available as ``ap_method="voc"`` for comparison with VOC-style tools.

Matching is one-to-one: predictions are taken in descending confidence (ties keep input order) and
each takes the unmatched same-class ground truth with the highest IoU. Because the order is by
confidence, matching all predictions once and then cutting at a score threshold gives exactly the
matches of the cut set, so AP (all predictions) and P/R/F (at the threshold) share one matching.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import DEFECT_CLASSES, NO_DEFECT, Defect, GroundTruth, box_iou

#: DeepPCB's IoU criterion: a match needs IoU strictly greater than this.
DEEPPCB_IOU = 0.33
#: Confusion-matrix column for ground truth that no prediction overlaps.
MISSED = "missed"
CONFUSION_ROWS: tuple[str, ...] = (*DEFECT_CLASSES, NO_DEFECT)
CONFUSION_COLUMNS: tuple[str, ...] = (*DEFECT_CLASSES, MISSED)
AP_METHODS = ("deeppcb", "voc")


class MetricsInputError(ConfigError, ValueError):
    """Bad evaluation input; a ValueError for callers and a ConfigError for the CLI's one-line report."""


@dataclass
class BoardEval:
    """One board's annotations and everything the detector reported, low-confidence ones included."""

    board_id: str
    ground_truth: list[GroundTruth]
    predictions: list[Defect]

    def __post_init__(self) -> None:
        self.board_id = str(self.board_id)
        self.ground_truth = list(self.ground_truth)
        self.predictions = list(self.predictions)
        for name, items, kind in (("ground_truth", self.ground_truth, GroundTruth),
                                  ("predictions", self.predictions, Defect)):
            for item in items:
                if not isinstance(item, kind):
                    raise TypeError(f"board {self.board_id}: {name} holds {type(item).__name__}, "
                                    f"not {kind.__name__}")


def _check_unit(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise MetricsInputError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise MetricsInputError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def _by_confidence(predictions: Sequence[Defect]) -> list[int]:
    """Indices in descending confidence; a stable sort, so ties keep input order (reproducible)."""
    return sorted(range(len(predictions)), key=lambda i: -predictions[i].confidence)


def _greedy_match(
    ground_truth: Sequence[GroundTruth],
    predictions: Sequence[Defect],
    order: Sequence[int],
    iou_threshold: float,
    class_aware: bool,
    gt_taken: list[bool],
) -> dict[int, tuple[int, float]]:
    """Prediction index -> (GT index, IoU) for the predictions in ``order``; marks ``gt_taken``."""
    found: dict[int, tuple[int, float]] = {}
    for i in order:
        p = predictions[i]
        best_j, best_iou = -1, iou_threshold  # strict '>' below: IoU == threshold is no match
        for j, g in enumerate(ground_truth):
            if gt_taken[j] or (class_aware and g.cls != p.cls):
                continue
            iou = box_iou(p.box, g.box)
            if iou > best_iou:
                best_j, best_iou = j, iou
        if best_j >= 0:
            gt_taken[best_j] = True
            found[i] = (best_j, best_iou)
    return found


def match_board(
    ground_truth: Sequence[GroundTruth],
    predictions: Sequence[Defect],
    iou_threshold: float = DEEPPCB_IOU,
    class_aware: bool = True,
) -> list[int | None]:
    """For each prediction (in input order) the index of the ground truth it matched, or None."""
    iou_threshold = _check_unit(iou_threshold, "iou_threshold")
    order, taken = _by_confidence(predictions), [False] * len(ground_truth)
    found = _greedy_match(ground_truth, predictions, order, iou_threshold, class_aware, taken)
    return [found[i][0] if i in found else None for i in range(len(predictions))]


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _f_score(precision: float, recall: float) -> float:
    return _ratio(2.0 * precision * recall, precision + recall)


Scored = Sequence[tuple[float, bool]]  # (confidence, is_true_positive) per prediction


def _ranked(scored: Scored) -> list[tuple[float, bool]]:
    return sorted(scored, key=lambda s: -s[0])  # stable: ties keep board, then prediction, order


def average_precision(scored: Scored, n_gt: int, method: str = "deeppcb") -> float | None:
    """AP of scored predictions against ``n_gt`` boxes; None when there is no ground truth.

    ``deeppcb``: ICDAR-2015 script as used by DeepPCB, sum of precision at each TP rank / n_gt.
    ``voc``: VOC all-point interpolation, area under the monotone precision envelope.
    """
    if method not in AP_METHODS:
        raise MetricsInputError(f"ap_method must be one of {', '.join(AP_METHODS)}, got {method!r}")
    if n_gt <= 0:
        return None
    tp = 0
    precisions: list[float] = []
    recalls: list[float] = []
    total = 0.0
    for rank, (_, hit) in enumerate(_ranked(scored), start=1):
        tp += int(hit)
        if hit:
            total += tp / rank
        precisions.append(tp / rank)
        recalls.append(tp / n_gt)
    if method == "deeppcb":
        return total / n_gt
    ap, prev_recall, envelope = 0.0, 0.0, 0.0
    for k in range(len(precisions) - 1, -1, -1):  # running max from the right
        envelope = max(envelope, precisions[k])
        precisions[k] = envelope
    for r, p in zip(recalls, precisions, strict=True):
        if r > prev_recall:
            ap += (r - prev_recall) * p
            prev_recall = r
    return ap


def pr_points(scored: Scored, n_gt: int) -> dict[str, list[float]]:
    """Raw precision/recall after each ranked detection (with its score), for plots and threshold picking."""
    out: dict[str, list[float]] = {"recall": [], "precision": [], "score": []}
    if n_gt <= 0:
        return out
    tp = 0
    for rank, (conf, hit) in enumerate(_ranked(scored), start=1):
        tp += int(hit)
        out["recall"].append(tp / n_gt)
        out["precision"].append(tp / rank)
        out["score"].append(float(conf))
    return out


@dataclass
class DetectionReport:
    """Benchmark numbers at one operating point, plus the threshold-free AP and the data to plot them."""

    precision: float
    recall: float
    f_score: float
    ap: float | None
    mean_ap: float | None
    per_class: dict[str, dict[str, Any]]
    n_gt: int
    tp: int
    fp: int
    fn: int
    boards: int
    defective_boards: int
    escapes: int
    escape_ids: list[str]
    false_call_boards: int
    false_call_ids: list[str]
    confusion: list[list[int]]
    confusion_labels: dict[str, list[str]]
    mean_matched_iou: float | None
    iou_threshold: float
    score_threshold: float
    ap_method: str = "deeppcb"
    pr_curve: dict[str, dict[str, list[float]]] = field(default_factory=dict, repr=False)

    def to_dict(self, include_pr: bool = False) -> dict[str, Any]:
        """JSON-ready dict (no NaN/inf: undefined values are None); PR points only under "pr" on request."""
        d = {k: v for k, v in self.__dict__.items() if k != "pr_curve"}
        if include_pr:
            d["pr"] = self.pr_curve
        return _json_safe(d)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float) or hasattr(value, "__float__"):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def _confusion_board(
    board: BoardEval,
    kept: list[int],
    class_matches: dict[int, tuple[int, float]],
    iou_threshold: float,
    matrix: list[list[int]],
) -> None:
    """Add one board to the confusion matrix.

    Same-class matches go first (so the diagonal equals the TP count), then the remaining predictions
    are matched class-agnostically to the remaining ground truth, one-to-one: a well-placed box with
    the wrong class lands off the diagonal instead of counting twice as "no-defect" and "missed".
    """
    gt, preds = board.ground_truth, board.predictions
    taken = [False] * len(gt)
    leftovers: list[int] = []
    for i in kept:
        if i in class_matches:
            j = class_matches[i][0]
            taken[j] = True
            matrix[DEFECT_CLASSES.index(gt[j].cls)][DEFECT_CLASSES.index(preds[i].cls)] += 1
        else:
            leftovers.append(i)
    cross = _greedy_match(gt, preds, leftovers, iou_threshold, class_aware=False, gt_taken=taken)
    for i in leftovers:
        row = DEFECT_CLASSES.index(gt[cross[i][0]].cls) if i in cross else len(DEFECT_CLASSES)
        matrix[row][DEFECT_CLASSES.index(preds[i].cls)] += 1
    for j, g in enumerate(gt):
        if not taken[j]:
            matrix[DEFECT_CLASSES.index(g.cls)][len(DEFECT_CLASSES)] += 1


def evaluate(
    boards: Sequence[BoardEval],
    score_threshold: float = 0.5,
    iou_threshold: float = DEEPPCB_IOU,
    *,
    ap_method: str = "deeppcb",
    per_class: Mapping[str, float] | None = None,
) -> DetectionReport:
    """Score detections the DeepPCB way: P/R/F at ``score_threshold`` (or a class's own threshold in
    ``per_class``, as the verdict policy reports them), AP over all predictions."""
    score_threshold = _check_unit(score_threshold, "score_threshold")
    thresholds = {c: _check_unit((per_class or {}).get(c, score_threshold), f"threshold {c}") for c in DEFECT_CLASSES}
    iou_threshold = _check_unit(iou_threshold, "iou_threshold")
    if ap_method not in AP_METHODS:
        raise MetricsInputError(f"ap_method must be one of {', '.join(AP_METHODS)}, got {ap_method!r}")
    for b in boards:
        if not isinstance(b, BoardEval):
            raise TypeError(f"boards holds {type(b).__name__}, not BoardEval")

    pooled: list[tuple[float, bool]] = []  # board, then prediction, order: ties rank reproducibly
    scored: dict[str, list[tuple[float, bool]]] = {c: [] for c in DEFECT_CLASSES}
    counts = {c: {"gt": 0, "tp": 0, "det": 0} for c in DEFECT_CLASSES}
    matrix = [[0] * len(CONFUSION_COLUMNS) for _ in CONFUSION_ROWS]
    escape_ids: list[str] = []
    false_call_ids: list[str] = []
    matched_ious: list[float] = []
    for b in boards:
        order = _by_confidence(b.predictions)
        taken = [False] * len(b.ground_truth)
        found = _greedy_match(b.ground_truth, b.predictions, order, iou_threshold, True, taken)
        for i, p in enumerate(b.predictions):
            pooled.append((p.confidence, i in found))
            scored[p.cls].append(pooled[-1])
        for g in b.ground_truth:
            counts[g.cls]["gt"] += 1
        kept = [i for i in order if b.predictions[i].confidence >= thresholds[b.predictions[i].cls]]
        for i in kept:
            counts[b.predictions[i].cls]["det"] += 1
            if i in found:
                counts[b.predictions[i].cls]["tp"] += 1
                matched_ious.append(found[i][1])
        _confusion_board(b, kept, found, iou_threshold, matrix)
        if b.ground_truth and not kept:
            escape_ids.append(b.board_id)
        elif kept and not b.ground_truth:
            false_call_ids.append(b.board_id)

    per_class: dict[str, dict[str, Any]] = {}
    for c, n in counts.items():
        p, r = _ratio(n["tp"], n["det"]), _ratio(n["tp"], n["gt"])
        per_class[c] = {"gt": n["gt"], "tp": n["tp"], "fp": n["det"] - n["tp"], "fn": n["gt"] - n["tp"],
                        "precision": p, "recall": r, "f_score": _f_score(p, r),
                        "ap": average_precision(scored[c], n["gt"], ap_method)}
    n_gt, tp, det = (sum(n[k] for n in counts.values()) for k in ("gt", "tp", "det"))
    class_aps = [v["ap"] for v in per_class.values() if v["ap"] is not None]
    precision, recall = _ratio(tp, det), _ratio(tp, n_gt)
    return DetectionReport(
        precision=precision, recall=recall, f_score=_f_score(precision, recall),
        ap=average_precision(pooled, n_gt, ap_method),
        mean_ap=sum(class_aps) / len(class_aps) if class_aps else None,
        per_class=per_class, n_gt=n_gt, tp=tp, fp=det - tp, fn=n_gt - tp,
        boards=len(boards), defective_boards=sum(1 for b in boards if b.ground_truth),
        escapes=len(escape_ids), escape_ids=escape_ids,
        false_call_boards=len(false_call_ids), false_call_ids=false_call_ids,
        confusion=matrix, confusion_labels={"rows": list(CONFUSION_ROWS), "columns": list(CONFUSION_COLUMNS)},
        mean_matched_iou=sum(matched_ious) / len(matched_ious) if matched_ious else None,
        iou_threshold=iou_threshold, score_threshold=score_threshold, ap_method=ap_method,
        pr_curve={"pooled": pr_points(pooled, n_gt),
                  **{c: pr_points(scored[c], n["gt"]) for c, n in counts.items() if n["gt"]}},
    )


def mean_iou_of_matches(
    boards: Sequence[BoardEval], score_threshold: float = 0.5, iou_threshold: float = DEEPPCB_IOU
) -> float | None:
    """Mean IoU of true-positive pairs at the threshold: how tightly reported boxes fit; None if no TP."""
    return evaluate(boards, score_threshold, iou_threshold).mean_matched_iou


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_per_class_table(report: DetectionReport) -> str:
    """Markdown table of per-class counts and rates, an "all" row (pooled AP) and the mAP under it."""
    header = ("class", "GT", "TP", "FP", "FN", "P", "R", "F", "AP")
    rows = [
        (c, str(v["gt"]), str(v["tp"]), str(v["fp"]), str(v["fn"]),
         _fmt(v["precision"]), _fmt(v["recall"]), _fmt(v["f_score"]), _fmt(v["ap"]))
        for c, v in report.per_class.items()
    ]
    rows.append((
        "all", str(report.n_gt), str(report.tp), str(report.fp), str(report.fn),
        _fmt(report.precision), _fmt(report.recall), _fmt(report.f_score), _fmt(report.ap),
    ))
    widths = [max(len(header[k]), *(len(r[k]) for r in rows)) for k in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        padded = [c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in pairs]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if k else "-" * (w + 2) for k, w in enumerate(widths)) + "|"
    footer = (
        f"mAP (mean of per-class AP over classes with GT): {_fmt(report.mean_ap)}; "
        f"score >= {report.score_threshold:g}, IoU > {report.iou_threshold:g}, AP method {report.ap_method}"
    )
    return "\n".join([line(header), rule, *(line(r) for r in rows), "", footer])
