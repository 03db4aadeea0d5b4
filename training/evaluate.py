"""Evaluate a model end to end with the inspection engine, by the DeepPCB protocol.

Variants say what the camera did to the tested image: ``clean`` (the pairs as given), ``moved`` (moved a few
pixels and a fraction of a degree, blurred, noisier, another gain; ground truth moved with it) and
``defect-free`` (the template moved and degraded the same way, inspected against the original template: any
reported defect is a false call).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pcb_inspect.inspect.engine import Inspector
from pcb_inspect.inspect.records import Defect, GroundTruth
from pcb_inspect.training.deeppcb import PairRecord
from pcb_inspect.training.degrade import variant_pair
from pcb_inspect.training.metrics import BoardEval, evaluate, format_per_class_table
from pcb_inspect.training.plots import plot_confusion_matrix, plot_pr_curves

@dataclass
class BoardRun:
    board_id: str
    ground_truth: list[GroundTruth]
    detections: list[Defect]
    reported: list[Defect]
    verdict: str
    latency_ms: float


def run_boards(inspector: Inspector, records: Sequence[PairRecord], variant: str = "clean", seed: int = 0) -> list[BoardRun]:
    runs = []
    for i, rec in enumerate(tqdm(records, desc=f"inspect ({variant})")):
        tested, template, gt = variant_pair(rec, variant, seed * 100_003 + i)
        t0 = time.perf_counter()
        detections, _ = inspector.detect(tested, template)
        latency = (time.perf_counter() - t0) * 1e3
        runs.append(
            BoardRun(
                rec.board_id,
                gt,
                detections,
                inspector.policy.reported(detections),
                str(inspector.policy.judge(detections)),
                latency,
            )
        )
    return runs


def evaluate_runs(runs: Sequence[BoardRun], score_threshold: float) -> dict:
    """The JSON report: DeepPCB metrics plus board-level verdict counts and timing."""
    report = evaluate([BoardEval(r.board_id, r.ground_truth, r.detections) for r in runs], score_threshold)
    out = report.to_dict()
    verdicts = [r.verdict for r in runs]
    defect_free = [r for r in runs if not r.ground_truth]
    out.update(
        verdicts={v: verdicts.count(v) for v in ("PASS", "REVIEW", "FAIL")},
        verdict_escapes=sum(1 for r in runs if r.ground_truth and r.verdict == "PASS"),
        defect_free_boards=len(defect_free),
        defect_free_clean_rate=(
            sum(1 for r in defect_free if not r.reported) / len(defect_free) if defect_free else None
        ),
        latency_ms_mean=float(np.mean([r.latency_ms for r in runs])) if runs else 0.0,
    )
    out["_report"] = report
    return out


def write_report(result: dict, json_path: Path | None, plots_dir: Path | None) -> None:
    """JSON file, confusion matrix and PR curves as PNG, per-class table as Markdown."""
    report = result.pop("_report")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2))
    if plots_dir:
        plots_dir.mkdir(parents=True, exist_ok=True)
        plot_confusion_matrix(report, plots_dir / "confusion_matrix.png")
        plot_pr_curves(report, plots_dir / "pr_curves.png")
        (plots_dir / "per_class.md").write_text(format_per_class_table(report) + "\n")
    result["_table"] = format_per_class_table(report)
