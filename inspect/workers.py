"""Inspection workers: each opens its own classifier once and inspects frames through ``Inspector.inspect``.

On the CPU the loop runs worker processes (the proposal stage holds the GIL; see ``inspect/bench.py``), each
with a one-thread onnxruntime session, so a frame crosses the process boundary once as pixels (or as a file
path, decoded in the worker) and comes back as its small ``Inspection``. GPU and torch backends run in threads
of the main process around one shared classifier.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from pcb_inspect.inspect.engine import Inspector
from pcb_inspect.inspect.errors import ConfigError, ImageError
from pcb_inspect.inspect.imageio import read_gray
from pcb_inspect.inspect.memory import keep_freed_memory
from pcb_inspect.inspect.records import Inspection, Verdict
from pcb_inspect.inspect.sources.base import Frame
from pcb_inspect.inspect.templates import TemplateStore


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs to build its own inspector (sessions cannot be pickled)."""

    model: str
    backend: str
    templates: TemplateStore
    station: str
    images: str  # which tested images come back with their inspection: "none", "rejects" or "all"


@dataclass
class Done:
    """One frame's result as it leaves a worker: the inspection, and the tested image when sinks want it."""

    inspection: Inspection
    image: np.ndarray | None = None
    template: np.ndarray | None = None  # the template it was judged against, with the image


_worker: tuple[Inspector, WorkerSpec] | None = None


def _die_with_parent(parent: int) -> None:
    """A station killed with ``kill -9`` must not leave its workers behind holding frames and the terminal's
    pipes: a worker whose parent is gone exits within a second. (Not PR_SET_PDEATHSIG: it fires when the
    *thread* that started the worker ends, and a hot swap starts workers from a thread that ends.)"""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(spec: WorkerSpec, parent: int) -> None:
    global _worker
    # Ctrl-C at a terminal (and a TERM sent to the whole process group) reaches the workers too: the station
    # decides when they stop (after the boards in flight), so they ignore both and exit when it shuts them down
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(parent)
    cv2.setNumThreads(1)
    keep_freed_memory()
    from pcb_inspect.models.registry import open_backend

    _worker = (Inspector(open_backend(spec.model, backend=spec.backend, threads=1)), spec)


def inspect_frame(inspector: Inspector, spec: WorkerSpec, frame: Frame) -> Done:
    """Decode (if the source left it to us), find the template, inspect: always an Inspection, never a raise."""
    started = time.time()
    kept: dict[str, np.ndarray] = {}

    def load() -> tuple[np.ndarray, np.ndarray]:
        if frame.error:
            raise ImageError(frame.error)
        tested = frame.image if frame.image is not None else _decode(frame)
        kept["image"] = tested
        kept["template"] = spec.templates.resolve(frame)
        return tested, kept["template"]

    inspection = inspector.inspect_loaded(
        load, board_id=frame.board_id or (frame.path.stem if frame.path else f"frame{frame.index}"),
        source=frame.source, frame_index=frame.index, station=spec.station, captured=frame.timestamp,
        stage_ms={"wait": max(0.0, (started - frame.timestamp) * 1e3)})
    wanted = spec.images == "all" or (spec.images == "rejects" and inspection.verdict is not Verdict.PASS)
    return Done(inspection, kept.get("image"), kept.get("template")) if wanted else Done(inspection)


def _decode(frame: Frame) -> np.ndarray:
    if frame.path is None:
        raise ImageError(f"frame {frame.index} of {frame.source}: no image and no file to read")
    return read_gray(frame.path)


def _inspect_in_process(frames: list[Frame]) -> list[Done]:
    if _worker is None:
        raise ConfigError("inspection worker has no classifier (its initialiser did not run)")
    inspector, spec = _worker
    return [inspect_frame(inspector, spec, f) for f in frames]


class WorkerPool:
    """Runs ``inspect_frame`` over batches of frames in processes (CPU) or threads (GPU, torch)."""

    def __init__(self, inspector: Inspector, spec: WorkerSpec, workers: int) -> None:
        if workers < 1:
            raise ConfigError(f"--workers {workers} must be at least 1")
        self.inspector, self.spec, self.workers = inspector, spec, workers
        backend = inspector.backend
        self.processes = backend.name == "onnxruntime-cpu" and hasattr(backend, "path")
        if self.processes:  # spawned, not forked: the loop has threads (capture, sinks, HTTP) whose locks a fork
            # would copy mid-use into the child (a worker that hangs at its first board)
            self.executor: Executor = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(spec, os.getpid()))
        else:
            self.executor = ThreadPoolExecutor(workers, thread_name_prefix="inspect")

    def warm_up(self) -> None:
        """Start every worker and open its session before the first frame (an ERROR here is a broken model)."""
        if self.processes:
            list(self.executor.map(_warm, range(self.workers)))

    def submit(self, frames: list[Frame]):  # noqa: ANN201 - a Future of list[Done]
        if self.processes:
            return self.executor.submit(_inspect_in_process, frames)
        return self.executor.submit(lambda: [inspect_frame(self.inspector, self.spec, f) for f in frames])

    @property
    def broken(self) -> bool:
        """A worker process died and the pool takes no more work (concurrent.futures marks it so)."""
        return bool(getattr(self.executor, "_broken", False))

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)


def _warm(_: int) -> bool:
    if _worker is None:
        raise ConfigError("inspection worker has no classifier (its initialiser did not run)")
    image = np.zeros((64, 64), np.uint8)
    _worker[0].inspect(image, image)
    return True
