"""Command-line option types and groups shared by the verbs; light to import (``--help`` loads no engine)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

DEFAULT_HTTP = "127.0.0.1:8080"


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (``--limit 0`` or ``-2`` is refused, not half-obeyed)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def unit_float(text: str) -> float:
    """argparse type: a finite number in [0, 1] (``nan`` and ``2`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a number in [0, 1]")
    return value


def add_run_options(p: argparse.ArgumentParser, demo: bool = False) -> None:
    if not demo:
        p.add_argument("--source", required=True, help="what to inspect: an image, a folder or glob, a video, "
                       "/dev/videoN or a camera index, rtsp:// or http:// (MJPEG), gst:PIPELINE, csi://N, "
                       "deeppcb://ROOT?split=LIST, synthetic://?fps=30&defect_rate=0.3")
        p.add_argument("--template", type=Path, help="the golden template (a file), or a folder of them named by "
                       "product or board id (datasets and synthetic:// bring their own)")
        p.add_argument("--db", type=Path, default=Path("inspections.db"), help="SQLite results (default "
                       "inspections.db); reject images go to a folder beside it")
        p.add_argument("--loop", action="store_true", help="start a file, folder or dataset over at its end")
    p.add_argument("--station", default="", help="this station's name in every record (default: the host name)")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--http", default=DEFAULT_HTTP, help=f"serve status and health here (default {DEFAULT_HTTP}); "
                   "'off' for none")
    p.add_argument("--workers", type=positive_int, default=2, help="inspection worker processes (default 2)")
    p.add_argument("--keep-rejects", type=positive_int, default=1000, help="reject boards whose pictures are kept")
    p.add_argument("--keep-rejects-mb", type=positive_int, default=500, help="megabytes of reject pictures kept")
    from pcb_inspect.inspect import extensions

    extensions.add_options(p)


def add_demo_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fps", type=float, default=30.0, help="conveyor speed, boards a second (default 30)")
    p.add_argument("--defect-rate", type=float, default=0.7, help="share of boards with defects (default 0.7)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="where the first boards' pictures go")
    p.add_argument("--pictures", type=int, default=8, help="how many boards to draw (default 8)")
