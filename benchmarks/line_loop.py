"""The line loop under a camera's pace: capture-to-verdict latency, queue depth and memory over many frames.

Default: the synthetic conveyor at 30 FPS for 10,000 frames (about 6 minutes), the shipped model, SQLite and
reject images written as on a line. Targets (the runtime issue): p99 capture-to-verdict < 40 ms, the frame
queue bounded, resident memory flat (within +-10% from the end of warm-up to the end). With a source faster
than the engine (``--source deeppcb://ROOT`` or ``synthetic://?fps=0``) it measures the loop's boards/s, to
compare with ``pcb-inspect bench`` on the same boards.

    python benchmarks/line_loop.py [--source URI] [--frames N] [--workers 2] [--json out.json] [--plot out.png]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from pcb_inspect.inspect.run import build_runtime
from pcb_inspect.inspect.runtime import RunConfig


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the inspection workers), from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="synthetic://?fps=30&defect_rate=0.3")
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=500, help="frames before the memory baseline is taken")
    ap.add_argument("--sinks", choices=("none", "sqlite", "all"), default="all",
                    help="none, SQLite only, or SQLite and reject pictures (default)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path, default=Path("line_loop.png"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="line-loop-"))
    config = RunConfig(source=args.source, station="bench", max_frames=args.frames, workers=args.workers)
    runtime = build_runtime(config, None if args.sinks == "none" else work / "r.db",
                            work / "rejects" if args.sinks == "all" else None, (1000, 200))
    samples: list[dict] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            s = runtime.stats.snapshot()
            samples.append({"t": time.time(), "frames": s["frames"], "inspected": s["inspected"],
                            "queued": len(runtime._queue), "rss_mb": _rss_mb(os.getpid()), "p99_ms": s["p99_ms"]})

    runtime.start()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    summary = runtime.run()
    done.set()
    sampler.join()
    warm = [s for s in samples if s["frames"] >= args.warmup] or samples
    base, rss = warm[0]["rss_mb"], [s["rss_mb"] for s in warm]
    result = {
        "source": args.source, "sinks": args.sinks, "workers": args.workers, **summary,
        "queue_max": max(s["queued"] for s in samples), "queue_bound": config.queue_size,
        "rss_baseline_mb": base, "rss_last_mb": rss[-1], "rss_max_mb": max(rss),
        "rss_drift_pct": 100 * (max(abs(r - base) for r in rss) / base),
        "samples": samples,
    }
    print(f"{args.source} (sinks: {args.sinks}): {summary['frames']} frames  inspected {summary['inspected']}  dropped "
          f"{summary['dropped']}  {summary['boards_per_s']:.1f} boards/s  capture-to-verdict p50 "
          f"{summary['p50_ms']:.1f} ms  p99 {summary['p99_ms']:.1f} ms (target < 40)  queue max "
          f"{result['queue_max']}/{config.queue_size}  RSS {base:.0f} -> {rss[-1]:.0f} MB (max drift "
          f"{result['rss_drift_pct']:.1f}%, target 10%)  verdicts pass {summary['pass']} fail {summary['fail']} "
          f"review {summary['review']} error {summary['error']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    _plot(result, args.plot)


def _plot(result: dict, path: Path) -> None:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return
    s = result["samples"]
    t0 = s[0]["t"]
    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot([x["t"] - t0 for x in s], [x["rss_mb"] for x in s], label="RSS, main + workers (MB)")
    ax1.set(xlabel="seconds", ylabel="MB", title=f"memory (drift {result['rss_drift_pct']:.1f}%)")
    ax1.set_ylim(bottom=0)
    ax2.plot([x["t"] - t0 for x in s], [x["p99_ms"] for x in s], label="p99, last 2000 boards")
    ax2.plot([x["t"] - t0 for x in s], [x["queued"] for x in s], label="frames queued")
    ax2.axhline(40, color="k", linestyle="--", label="40 ms target")
    ax2.set(xlabel="seconds", title=f"capture to verdict: p99 {result['p99_ms']:.1f} ms over the run")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"picture: {path}")


if __name__ == "__main__":
    main()
