"""Evaluate a model end to end with the inspection engine, by the DeepPCB protocol.

Variants say what the camera did to the tested image: ``clean`` (the pairs as given), ``moved`` (moved a few
pixels and a fraction of a degree, blurred, noisier, another gain; ground truth moved with it) and
``defect-free`` (the template moved and degraded the same way, inspected against the original template: any
reported defect is a false call).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pcb_inspect.inspect.atomic import atomic_write_text, check_writable_dir, check_writable_file
from pcb_inspect.inspect.batch import PARTIAL, open_inspector, plural, read_records
from pcb_inspect.inspect.deeppcb import PairRecord
from pcb_inspect.inspect.degrade import variant_pair
from pcb_inspect.inspect.engine import Inspector
from pcb_inspect.inspect.errors import PcbInspectError
from pcb_inspect.inspect.metrics import BoardEval, evaluate, format_per_class_table
from pcb_inspect.inspect.records import Defect, GroundTruth, Inspection, Verdict
from pcb_inspect.inspect.verdict import VerdictPolicy
from pcb_inspect.training.plots import plot_confusion_matrix, plot_pr_curves


@dataclass
class BoardRun:
    """One board as the line would have judged it, and what was truly on it."""

    inspection: Inspection
    ground_truth: list[GroundTruth]

    @property
    def detections(self) -> list[Defect]:
        """Everything the engine kept, reported or not: the precision-recall curve needs the weak ones too."""
        return [*self.inspection.defects, *self.inspection.below_threshold]


def run_boards(inspector: Inspector, records: Sequence[PairRecord], variant: str = "clean", seed: int = 0) -> list[BoardRun]:
    """Inspect every board through ``Inspector.inspect`` (the line's own path); a board that cannot be read or
    inspected is an ERROR run, scored as missing all its defects, and the batch goes on."""
    runs = []
    for i, rec in enumerate(tqdm(records, desc=f"inspect ({variant})")):
        truth: list[GroundTruth] = []

        def load(rec: PairRecord = rec, i: int = i) -> tuple[np.ndarray, np.ndarray]:
            tested, template, gt = variant_pair(rec, variant, seed * 100_003 + i)
            truth.extend(gt)
            return tested, template

        inspection = inspector.inspect_loaded(load, board_id=rec.board_id, source=str(rec.tested_path), frame_index=i)
        if inspection.verdict is Verdict.ERROR and not truth and variant != "defect-free":
            try:  # the images failed: the board's defects still count as missed
                truth.extend(rec.load_ground_truth())
            except PcbInspectError:
                pass
        runs.append(BoardRun(inspection, truth))
    return runs


def evaluate_runs(runs: Sequence[BoardRun], policy: VerdictPolicy) -> dict:
    """The JSON report: DeepPCB metrics (at the policy's per-class thresholds) plus verdicts, errors, timing."""
    report = evaluate([BoardEval(r.inspection.board_id, r.ground_truth, r.detections) for r in runs],
                      policy.score_threshold, per_class=policy.per_class)
    out = report.to_dict()
    verdicts = [str(r.inspection.verdict) for r in runs]
    defect_free = [r for r in runs if not r.ground_truth]
    out.update(
        verdicts={v: verdicts.count(v) for v in ("PASS", "REVIEW", "FAIL", "ERROR")},
        verdict_escapes=sum(1 for r in runs if r.ground_truth and r.inspection.verdict is Verdict.PASS),
        errors=[{"board_id": r.inspection.board_id, "error": r.inspection.error}
                for r in runs if r.inspection.verdict is Verdict.ERROR],
        defect_free_boards=len(defect_free),
        defect_free_clean_rate=(
            # an ERROR board was not judged clean: it counts against the rate
            sum(1 for r in defect_free if r.inspection.verdict in (Verdict.PASS, Verdict.REVIEW))
            / len(defect_free) if defect_free else None
        ),
        latency_ms_mean=float(np.mean([r.inspection.latency_ms for r in runs])) if runs else 0.0,
    )
    out["_report"] = report
    return out


def write_report(result: dict, json_path: Path | None, plots_dir: Path | None) -> None:
    """JSON file, confusion matrix and PR curves as PNG, per-class table as Markdown."""
    report = result.pop("_report")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json_path, json.dumps(result, indent=2))
    if plots_dir:
        plots_dir.mkdir(parents=True, exist_ok=True)
        plot_confusion_matrix(report, plots_dir / "confusion_matrix.png")
        plot_pr_curves(report, plots_dir / "pr_curves.png")
        atomic_write_text(plots_dir / "per_class.md", format_per_class_table(report) + "\n")
    result["_table"] = format_per_class_table(report)


def cmd_eval(args: argparse.Namespace) -> int:
    """``pcb-inspect eval``: every board through ``Inspector.inspect``, scored by the DeepPCB protocol."""
    if args.json:
        check_writable_file(args.json, "--json")
    if args.plots:
        check_writable_dir(args.plots, "--plots")
    inspector = open_inspector(args)
    records, problems = read_records(args, parse_annotations=True)
    t0 = time.perf_counter()
    runs = run_boards(inspector, records, args.variant, args.seed)
    result = evaluate_runs(runs, inspector.policy)
    result.update(seconds=time.perf_counter() - t0, variant=args.variant, model_sha256=inspector.backend.model_sha256,
                  bad_split_lines=problems)
    for err in result["errors"]:
        print(f"board {err['board_id']}: {err['error']}", file=sys.stderr)
    write_report(result, args.json, args.plots)
    print(result.pop("_table"))
    print(
        f"boards {result['boards']}  precision {result['precision']:.4f}  recall {result['recall']:.4f}  "
        f"F-score {result['f_score']:.4f}  AP {result['ap'] or 0:.4f}  mAP {result['mean_ap'] or 0:.4f}  "
        f"escapes {result['escapes']}  mean matched IoU {result['mean_matched_iou'] or 0:.3f}  "
        f"errors {len(result['errors'])}  ({result['seconds']:.1f} s)"
        + (f"; {plural(len(problems), 'bad split line')} skipped" if problems else "")
    )
    if result["defect_free_boards"]:
        print(f"defect-free boards with no defect reported: {result['defect_free_clean_rate']:.4f}")
    return PARTIAL if result["errors"] or problems else 0
