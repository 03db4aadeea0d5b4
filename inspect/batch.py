"""The line-side batch verbs over a DeepPCB-layout dataset: ``predict`` and ``bench`` (``eval`` is a training
verb, ``training/evaluate.py``, built on the same helpers).

Each checks its options and output paths before any work, reads the split list without stopping at a bad line,
inspects every board through ``Inspector.inspect`` (a board that cannot be read is that board's ERROR, named on
stderr) and still finishes the good ones; the exit status is 1 when any line or board failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pcb_inspect.inspect.atomic import atomic_write_text, check_writable_dir, check_writable_file, discard
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import Verdict

#: Exit status of a batch that finished but could not use every line or board.
PARTIAL = 1


def open_inspector(args: argparse.Namespace, threads: int = 0):  # noqa: ANN201
    from pcb_inspect.inspect.engine import Inspector
    from pcb_inspect.models.registry import open_backend

    return Inspector(open_backend(args.model, backend=args.backend, threads=threads))


def read_records(
    args: argparse.Namespace, need_annotations: bool = True, parse_annotations: bool = False
) -> tuple[list, list[str]]:
    """The split's usable pairs (filtered by --groups, cut by --limit) and its bad lines, printed as they are.

    ``parse_annotations``: refuse a pair whose annotation file does not parse (eval scores them)."""
    records, problems, _ = _scan(args, need_annotations, parse_annotations)
    return records, problems


def _scan(
    args: argparse.Namespace, need_annotations: bool, parse_annotations: bool = False
) -> tuple[list, list[str], list[str]]:
    """read_records, plus the board ids of refused lines in the chosen groups (their old results would lie)."""
    from pcb_inspect.inspect.deeppcb import scan_split

    scan = scan_split(args.data, args.split, need_annotations, parse_annotations)
    for line in scan.notes:
        print(f"note: {line}", file=sys.stderr)
    for line in scan.problems:
        print(f"skipped: {line}", file=sys.stderr)
    records = scan.records
    wanted = set(args.groups.split(",")) if getattr(args, "groups", None) else None
    if wanted:
        records = [r for r in records if r.group in wanted]
        if not records:
            raise ConfigError(f"--groups {args.groups}: no pairs of these groups in {args.split}")
    if not records:
        raise ConfigError(f"{args.split}: no usable pairs ({plural(len(scan.problems), 'bad line')})")
    refused = [board for board, group in scan.refused if wanted is None or group in wanted]
    return (records[: args.limit] if getattr(args, "limit", None) else records), scan.problems, refused


def plural(n: int, what: str) -> str:
    """``1 board``, ``2 boards``."""
    return f"{n} {what}{'' if n == 1 else 's'}"


def cmd_predict(args: argparse.Namespace) -> int:
    """One result file per board, each written whole; a board that fails leaves none (an old one is removed)."""
    if args.format != "deeppcb":
        raise ConfigError(f"--format {args.format}: only 'deeppcb' is supported")
    check_writable_dir(args.out, "--out")
    inspector = open_inspector(args)
    records, problems, refused = _scan(args, need_annotations=False)
    good = {rec.board_id for rec in records}
    for board_id in refused:
        if board_id not in good:
            discard(args.out / f"{board_id}.txt")
    from tqdm import tqdm

    failed = 0
    for i, rec in enumerate(tqdm(records, desc="predict", disable=None)):  # no bar when stderr is a log
        result = args.out / f"{rec.board_id}.txt"
        inspection = inspector.inspect_loaded(rec.load_images, board_id=rec.board_id, source=str(rec.tested_path),
                                              frame_index=i)
        error = inspection.error if inspection.verdict is Verdict.ERROR else None
        if error is None:
            chosen = inspection.defects if args.min_score is None else [
                d for d in (*inspection.defects, *inspection.below_threshold) if d.confidence >= args.min_score]
            try:
                atomic_write_text(result, "".join(
                    f"{d.box[0]},{d.box[1]},{d.box[2]},{d.box[3]},{d.confidence:.4f},{d.cls}\n" for d in chosen))
            except OSError as exc:
                error = f"cannot write {result} ({exc.strerror or exc})"
        if error is not None:
            failed += 1
            discard(result)  # a result from an earlier run would now lie about this board
            tqdm.write(f"board {rec.board_id}: {error}", file=sys.stderr)
    print(f"wrote {plural(len(records) - failed, 'result file')} to {args.out}"
          + (f"; {plural(failed, 'board')} failed" if failed else "")
          + (f"; {plural(len(problems), 'bad split line')}" if problems else ""))
    return PARTIAL if failed or problems else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pcb_inspect.inspect.bench import plot_latency, run_bench

    picture_path = args.plot or (args.json.with_suffix(".png") if args.json else Path("bench.png"))
    for path, what in ((args.json, "--json"), (picture_path, "--plot")):
        if path:
            check_writable_file(path, what)
    # when the classifier runs in the main process beside the workers, give it what the workers leave (at least
    # one thread); on the CPU it runs in each worker with one thread instead (see inspect/bench.py)
    inspector = open_inspector(args, threads=max(1, (os.cpu_count() or 1) - args.workers))
    records, problems = read_records(args)
    result = run_bench(inspector, records, args.workers, pool=args.pool, classify_in=args.classify_in)
    picture = plot_latency(result, picture_path)
    result.pop("_latencies")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2))
    print(
        f"{result['boards']} boards  {result['boards_per_s']:.1f} boards/s  (floor {result['floor_boards_per_s']:.1f},"
        f" ratio {result['ratio_to_floor']:.2f})  p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
        f"backend {result['backend']} (classify in {result['classify_in']})  {result['workers']} {result['pool']} "
        f"workers  peak RSS {result['rss_peak_mb']:.0f} MB  verdicts {result['verdicts']}"
    )
    for stage, v in result["stages"].items():
        print(f"  {stage:9s} p50 {v['p50_ms']:6.2f}  p95 {v['p95_ms']:6.2f}  p99 {v['p99_ms']:6.2f} ms")
    print(f"latency histogram: {picture}" if picture else "latency histogram: not drawn (needs the [plots] extra)")
    return PARTIAL if problems or result["verdicts"].get("ERROR") else 0
