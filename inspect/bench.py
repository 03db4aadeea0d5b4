"""Throughput and latency of the whole engine on real pairs, with the floor measured in the same run.

Decode, registration, proposals and crops run in ``workers`` processes (or threads: OpenCV releases the GIL,
but the Python parts of the proposal stage hold it); OpenCV's own thread pool is set to one thread so the
workers do not oversubscribe the cores. Where the classifier runs depends on the backend (``classify_in``):
on the CPU each worker process opens its own one-thread session and classifies its board's candidates in one
batched call, so a board never crosses a process boundary as crops and no core serves two masters (with the
classifier in the main process beside two workers, two cores run three busy processes). A GPU backend
classifies in the main process, one context feeding from all workers. The floor is what decoding both JPEGs
and a plain difference alone allow with the same workers: no inspection can be faster, so our rate / floor
says how much the inspection itself costs.
"""

from __future__ import annotations

import resource
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pcb_inspect.inspect.engine import Inspector, PairPreparer, Prepared, failure_reason
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.memory import keep_freed_memory
from pcb_inspect.inspect.records import Inspection

STAGES = ("decode", "register", "propose", "crop", "classify", "verdict")


POOLS = ("process", "thread")
CHUNK = 8  # boards a worker task carries (see _bounded_map)
CLASSIFY_IN = ("auto", "workers", "main")


@dataclass(frozen=True)
class WorkerModel:
    """What a worker process needs to open its own one-thread classifier (sessions cannot be pickled)."""

    path: str
    backend: str


_worker_inspector: Inspector | None = None  # the classifier of this worker process, when it has one


def _init_worker(model: WorkerModel | None = None) -> None:
    global _worker_inspector
    cv2.setNumThreads(1)
    keep_freed_memory()
    if model is not None:
        from pcb_inspect.models.registry import open_backend

        _worker_inspector = Inspector(open_backend(model.path, backend=model.backend, threads=1))


def _pool(kind: str, workers: int, model: WorkerModel | None = None) -> Executor:
    """Worker processes sidestep the GIL held by the Python parts of proposals; threads share memory."""
    if kind == "process":
        return ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(model,))
    if kind == "thread":
        return ThreadPoolExecutor(workers)
    raise ConfigError(f"--pool {kind!r}: choose one of {', '.join(POOLS)}")


def classify_in_workers(inspector: Inspector, where: str) -> bool:
    """``auto``: in the workers for a CPU onnxruntime model, in the main process for GPUs and torch."""
    if where not in CLASSIFY_IN:
        raise ConfigError(f"--classify-in {where!r}: choose one of {', '.join(CLASSIFY_IN)}")
    movable = inspector.backend.name == "onnxruntime-cpu" and hasattr(inspector.backend, "path")
    if where == "workers" and not movable:
        raise ConfigError(f"--classify-in workers: only an onnxruntime-cpu .onnx model can be opened in each worker, "
                          f"not {inspector.backend.name}")
    return movable if where == "auto" else where == "workers"


@dataclass
class _Inspected:
    """What a worker sends back for one board: no crops, no images."""

    candidates: int
    stage_ms: dict[str, float]
    verdict: str


def _summary(inspection: Inspection) -> _Inspected:
    return _Inspected(inspection.candidates, inspection.stage_ms, str(inspection.verdict))


class _InspectInWorker:
    """Decode and inspect a record in a worker, with the worker's own classifier (processes) or the shared one
    (threads: onnxruntime sessions may be run from several threads): ``Inspector.inspect``, as the line runs."""

    def __init__(self, shared: Inspector | None) -> None:
        self.shared = shared

    def __call__(self, record) -> _Inspected:  # noqa: ANN001
        inspector = self.shared or _worker_inspector
        if inspector is None:
            raise ConfigError("bench worker has no classifier (pool initialiser did not run)")
        return _summary(inspector.inspect_loaded(record.load_images, board_id=record.board_id))


@dataclass(frozen=True)
class _PrepareInWorker:
    """Decode and prepare in a worker; the main process classifies (GPUs). A pair that cannot be read or
    prepared comes back as its ERROR inspection, as ``Inspector.inspect`` would give it."""

    preparer: PairPreparer

    def __call__(self, record) -> Prepared | Inspection:  # noqa: ANN001
        t0 = time.perf_counter()
        try:
            prepared = self.preparer.from_record(record)
        except Exception as exc:  # noqa: BLE001 - the board's ERROR, never the end of the run
            return Inspection.failed(failure_reason(exc), board_id=record.board_id,
                                     latency_ms=(time.perf_counter() - t0) * 1e3)
        return prepared


def _map_chunk(fn: Callable, chunk: list) -> list:
    return [fn(item) for item in chunk]


def _bounded_map(pool: Executor, fn: Callable, items: Sequence, depth: int, chunk: int = 1) -> Iterable:
    """pool.map in order, ``chunk`` items a task, with at most ``depth`` tasks waiting, so memory stays flat.

    A task per board cost the main process 0.69 ms of CPU a board (futures, pickling, queue threads), taken
    from the workers' two cores; chunks of 8 boards cut it to 0.12 ms. Latency is still timed per board,
    inside the worker."""
    pending: deque = deque()
    for start in range(0, len(items), chunk):
        pending.append(pool.submit(_map_chunk, fn, list(items[start : start + chunk])))
        if len(pending) >= depth:
            yield from pending.popleft().result()
    while pending:
        yield from pending.popleft().result()


def _decode_and_diff(rec) -> int:  # noqa: ANN001
    tested, template = rec.load_images()
    return int(cv2.absdiff(tested, template)[0, 0])


def measure_floor(records: Sequence, workers: int, pool: str = "process") -> float:
    """Boards per second for decoding both images and differencing them, nothing else, in the same pool."""
    with _pool(pool, workers) as executor:  # no classifier to open: this measures decode + difference only
        list(executor.map(_decode_and_diff, records[: 2 * workers]))  # start the workers before timing
        t0 = time.perf_counter()
        for _ in _bounded_map(executor, _decode_and_diff, records, 4 * workers, CHUNK):
            pass
        return len(records) / (time.perf_counter() - t0)


def run_bench(
    inspector: Inspector,
    records: Sequence,
    workers: int = 2,
    warmup: int = 5,
    pool: str = "process",
    classify_in: str = "auto",
) -> dict:
    """Inspect every record; boards/s, per-stage and total latency percentiles, floor and peak memory."""
    if workers < 1:
        raise ConfigError(f"--workers {workers} must be at least 1")
    if not records:
        raise ConfigError("bench needs at least one pair")
    in_workers = classify_in_workers(inspector, classify_in)
    cv2.setNumThreads(1)
    keep_freed_memory()
    if not (in_workers and pool == "process"):  # worker processes warm their own sessions below
        for rec in records[:warmup]:  # load code paths and the runtime's kernels before timing
            inspector.inspect_loaded(rec.load_images)
    if in_workers:
        model = WorkerModel(str(inspector.backend.path), inspector.backend.name) if pool == "process" else None
        task: Callable = _InspectInWorker(inspector if pool == "thread" else None)
    else:
        model, task = None, _PrepareInWorker(inspector.preparer)
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    totals, candidates = [], []
    verdicts: dict[str, int] = {}
    with _pool(pool, workers, model) as executor:
        list(executor.map(task, records[: 2 * workers]))  # start the workers (and their sessions) before timing
        t0 = time.perf_counter()
        boards = _bounded_map(executor, task, records, 4 * workers, CHUNK)
        for done in tqdm(boards, total=len(records), desc="bench"):
            board = done if in_workers else _summary(done if isinstance(done, Inspection) else inspector.conclude(done))
            verdicts[board.verdict] = verdicts.get(board.verdict, 0) + 1
            for s in STAGES:
                stages[s].append(board.stage_ms.get(s, 0.0))
            totals.append(sum(board.stage_ms.get(s, 0.0) for s in STAGES))
            candidates.append(board.candidates)
        wall = time.perf_counter() - t0
    floor = measure_floor(records, workers, pool)
    rate = len(records) / wall

    def pct(values: list[float]) -> dict[str, float]:
        return {f"p{q}_ms": float(np.percentile(values, q)) for q in (50, 95, 99)}

    total = pct(totals)
    return {
        "boards": len(records),
        "workers": workers,
        "pool": pool,
        "classify_in": "workers" if in_workers else "main",
        "backend": inspector.backend.name,
        "model_sha256": inspector.backend.model_sha256,
        "boards_per_s": rate,
        "floor_boards_per_s": floor,
        "ratio_to_floor": rate / floor,
        **total,
        "stages": {s: pct(v) | {"mean_ms": float(np.mean(v))} for s, v in stages.items()},
        "candidates_per_board": float(np.mean(candidates)),
        "verdicts": verdicts,
        "seconds": wall,
        # worker processes count too: main peak plus each worker at the largest worker's peak (an upper bound)
        "rss_peak_mb": (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            + (workers * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if pool == "process" else 0)
        ) / 1024,
        "_latencies": {"total": totals, **stages},
    }


def plot_latency(result: dict, path: Path) -> Path | None:
    """Histogram of per-board latency (service time) and a box plot per stage; None without matplotlib (the
    ``[plots]`` extra: an edge box runs bench without it)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None

    lat = result["_latencies"]
    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.hist(lat["total"], bins=50, color="#3070b0")
    for q, style in (("p50_ms", "-"), ("p99_ms", "--")):
        ax1.axvline(result[q], color="k", linestyle=style, label=f"{q[:3]} {result[q]:.1f} ms")
    ax1.set(xlabel="per-board latency, all stages (ms)", ylabel="boards",
            title=f"{result['boards_per_s']:.0f} boards/s, {result['workers']} workers, {result['backend']}")
    ax1.legend()
    ax2.boxplot([lat[s] for s in STAGES], tick_labels=list(STAGES), showfliers=False)
    ax2.set(ylabel="ms", title=f"per stage (floor {result['floor_boards_per_s']:.0f} boards/s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
