"""The newcomer's first run: the line on a synthetic conveyor, with the shipped model and a status page.

``pcb-inspect demo`` is ``run`` on ``synthetic://`` (boards moved and degraded as a line camera sees them, a
share of them defect-free), with a temporary results database and HTTP on 127.0.0.1:8080 (the next free port
if that one is taken). It runs until Ctrl-C or ``--max-frames``; the first boards are also drawn to
``demo_out/`` with a contact sheet, and the run is scored against the defects the conveyor injected.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
from pathlib import Path

import cv2

from pcb_inspect.inspect.annotate import contact_sheet, draw_inspection
from pcb_inspect.inspect.atomic import check_writable_dir
from pcb_inspect.inspect.metrics import BoardEval, evaluate
from pcb_inspect.inspect.records import Verdict
from pcb_inspect.inspect.options import DEFAULT_HTTP
from pcb_inspect.inspect.run import build_runtime, run_station
from pcb_inspect.inspect.runtime import RunConfig
from pcb_inspect.inspect.sinks.base import Result, Sink


class PictureSink(Sink):
    """Draws the first ``first`` boards with their defects (and the injected truth), keeps every board's
    detections to score the run against the truth at the end."""

    name = "pictures"
    wants_images = "all"

    def __init__(self, out: Path, first: int) -> None:
        super().__init__(queue_size=64, on_full="drop_oldest")
        self.out, self.first = out, first
        self.pictures: list = []
        self.boards: list[BoardEval] = []

    def open(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)

    def write(self, result: Result) -> None:
        ins = result.inspection
        if result.truth is not None and ins.verdict is not Verdict.ERROR:
            self.boards.append(BoardEval(ins.board_id, list(result.truth), [*ins.defects, *ins.below_threshold]))
        if len(self.pictures) < self.first and result.image is not None:
            picture = draw_inspection(result.image, ins.defects, ins.verdict, ins.board_id, result.truth or ())
            cv2.imwrite(str(self.out / f"{len(self.pictures):03d}_{ins.board_id}.png"), picture)
            self.pictures.append(picture)
            names = ", ".join(f"{d.cls}@{d.confidence:.2f}" for d in ins.defects) or "-"
            print(f"{ins.board_id:>12}  {ins.verdict:7}  found {len(ins.defects):2d}  true "
                  f"{len(result.truth or []):2d}  {ins.latency_ms:6.1f} ms  {names}", flush=True)

    def teardown(self) -> None:
        if self.pictures:
            cv2.imwrite(str(self.out / "summary.png"), contact_sheet(self.pictures))


def _free_http(address: str) -> str:
    """The demo's default port, or any free one when 8080 is taken (a newcomer's machine runs other things)."""
    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        try:
            s.bind((host, int(port)))
            return address
        except OSError:
            print(f"{address} is in use; serving on a free port instead")
            return f"{host}:0"


def cmd_demo(args: argparse.Namespace) -> int:
    check_writable_dir(args.out, "--out")
    work = Path(tempfile.mkdtemp(prefix="pcb-inspect-demo-"))
    source = f"synthetic://?fps={args.fps:g}&defect_rate={args.defect_rate:g}&seed={args.seed}"
    config = RunConfig(source=source, model=args.model, backend=args.backend, station=args.station or "demo",
                       max_frames=args.max_frames, workers=args.workers)
    pictures = PictureSink(args.out, args.pictures)
    runtime = build_runtime(config, work / "demo.db", work / "rejects", (args.keep_rejects, args.keep_rejects_mb),
                            extra_sinks=[pictures], args=args)
    print(f"demo: {source}  model {runtime.inspector.backend.model_sha256[:12]} ({runtime.inspector.backend.name})"
          f"  results {work / 'demo.db'}  (Ctrl-C to stop)", flush=True)
    http = _free_http(args.http) if args.http == DEFAULT_HTTP else args.http
    status = run_station(runtime, http, args)
    if pictures.boards:
        r = evaluate(pictures.boards, runtime.inspector.policy.score_threshold,
                     per_class=runtime.inspector.policy.per_class)
        print(f"against the injected defects: precision {r.precision:.3f}  recall {r.recall:.3f}  F-score "
              f"{r.f_score:.3f}  escapes {r.escapes}  false-call boards {r.false_call_boards} of {r.boards}")
    if pictures.pictures:
        print(f"pictures: {args.out}/  (first {len(pictures.pictures)} boards: {args.out / 'summary.png'})")
    return status
