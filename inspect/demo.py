"""The newcomer's first run: synthetic boards, as a line camera would see them, inspected by the shipped model.

Every fourth board is defect-free (its template, moved and degraded); the others carry injected defects and are
moved and degraded too. The result is a table on the terminal, one annotated picture per board and a contact
sheet, and the score against the boards' known defects.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from pcb_inspect.inspect.annotate import contact_sheet, draw_inspection
from pcb_inspect.inspect.engine import Inspector
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.models.registry import open_backend


def run_demo(boards: int, out: Path, model: Path | None = None, seed: int = 7, backend: str = "auto") -> int:
    from pcb_inspect.training.degrade import move_and_degrade, transform_ground_truth
    from pcb_inspect.training.metrics import BoardEval, evaluate
    from pcb_inspect.training.synthetic import generate_board

    if not 1 <= boards <= 1000:
        raise ConfigError(f"--boards {boards} is not in [1, 1000]")
    inspector = Inspector(open_backend(model, backend=backend))
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pictures, evals = [], []
    print(f"model {inspector.backend.model_sha256[:12]}  ({inspector.backend.name})")
    print(f"{'board':>8}  {'verdict':7}  {'found':>5}  {'true':>4}  {'ms':>6}  defects")
    for i in range(boards):
        board = generate_board(seed * 1000 + i)
        defect_free = i % 4 == 3
        source = board.template if defect_free else board.tested
        moved = move_and_degrade(source, rng)
        truth = [] if defect_free else transform_ground_truth(board.ground_truth, moved.matrix, source.shape)
        t0 = time.perf_counter()
        detections, _ = inspector.detect(moved.image, board.template)
        latency_ms = (time.perf_counter() - t0) * 1e3
        board_id = f"synth{i:03d}"
        verdict, reported = inspector.policy.judge(detections), inspector.policy.reported(detections)
        evals.append(BoardEval(board_id, truth, detections))
        names = ", ".join(f"{d.cls}@{d.confidence:.2f}" for d in reported) or "-"
        print(f"{board_id:>8}  {verdict:7}  {len(reported):5d}  {len(truth):4d}  {latency_ms:6.1f}  {names}")
        picture = draw_inspection(moved.image, reported, verdict, board_id, truth)
        cv2.imwrite(str(out / f"{board_id}.png"), picture)
        pictures.append(picture)
    sheet = out / "summary.png"
    cv2.imwrite(str(sheet), contact_sheet(pictures))
    report = evaluate(evals, inspector.policy.score_threshold)
    print(f"against the injected defects: precision {report.precision:.3f}  recall {report.recall:.3f}  "
          f"F-score {report.f_score:.3f}  escapes {report.escapes}  false-call boards {report.false_call_boards}")
    print(f"pictures: {out}/  (all boards: {sheet})")
    return 0
