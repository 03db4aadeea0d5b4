"""The line runtime: capture -> inspection workers -> sinks, a loop that never stops on a bad frame.

Capture runs in its own thread into a bounded queue: a live source (camera, stream, the synthetic conveyor)
drops the oldest waiting frame when the engine is behind (counted), an offline one (files, a dataset, a video
file) waits instead, so none of its boards is lost. Inspection runs in worker processes (``inspect/workers.py``),
frames in batches when a backlog builds, one at a time when the line is keeping up (latency). Every result goes
through ``Inspector.inspect`` and then to every sink; a lost source is reopened with exponential back-off.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path

from pcb_inspect.inspect.engine import failure_reason
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import Inspection
from pcb_inspect.inspect.sinks.base import Result, Sink
from pcb_inspect.inspect.sources.base import Frame, Source, SourceEnded
from pcb_inspect.inspect.stats import LineStats
from pcb_inspect.inspect.swap import ModelSwap
from pcb_inspect.inspect.workers import Done, WorkerPool, WorkerSpec

CHUNK = 8  # frames a worker task may carry when a backlog has built up
BACKOFF_S = (0.5, 30.0)  # first and longest wait between reconnection attempts


@dataclass(frozen=True)
class RunConfig:
    """What ``pcb-inspect run`` was asked to do, checked before anything starts."""

    source: str
    template: Path | None = None
    model: Path | None = None
    backend: str = "auto"
    station: str = ""
    max_frames: int | None = None
    workers: int = 2
    loop: bool = False
    queue_size: int = 8
    stall_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ConfigError("--source: empty; give a file, folder, video, camera or URI")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"--max-frames {self.max_frames} is not at least 1")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"--workers {self.workers} is not in [1, 64]")
        if not 1 <= self.queue_size <= 1024:
            raise ConfigError(f"queue size {self.queue_size} is not in [1, 1024]")
        if not self.stall_s > 0:
            raise ConfigError(f"stall time {self.stall_s} must be positive")
        if self.template is not None and not Path(self.template).exists():
            raise ConfigError(f"--template {self.template}: no such file or folder")
        if not self.station:
            object.__setattr__(self, "station", socket.gethostname())


class FrameQueue:
    """Bounded; ``live`` drops the oldest frame when full, otherwise ``put`` waits (until ``stop`` is set)."""

    def __init__(self, size: int, live: bool) -> None:
        self.size, self.live = size, live
        self._frames: deque[Frame] = deque()
        self._cond = threading.Condition()

    def put(self, frame: Frame, stop: threading.Event) -> int:
        """Queue a frame; returns how many older frames were dropped for it."""
        with self._cond:
            dropped = 0
            while len(self._frames) >= self.size:
                if self.live:
                    self._frames.popleft()
                    dropped += 1
                elif stop.is_set():
                    return 1  # shutting down: the frame was never queued
                else:
                    self._cond.wait(0.05)
            self._frames.append(frame)
            self._cond.notify_all()
            return dropped

    def take(self, most: int, timeout: float) -> list[Frame]:
        with self._cond:
            if not self._frames and timeout > 0:
                self._cond.wait(timeout)
            batch = [self._frames.popleft() for _ in range(min(most, len(self._frames)))]
            self._cond.notify_all()
            return batch

    def __len__(self) -> int:
        return len(self._frames)


class Runtime:
    """One station: a source, an inspector in worker processes, and sinks. ``status()`` and ``health()`` feed
    the HTTP app; ``run()`` blocks until the source ends, ``max_frames`` are done or ``stop()`` is called."""

    def __init__(self, config: RunConfig, source: Source, inspector, spec: WorkerSpec, sinks: list[Sink]) -> None:  # noqa: ANN001
        self.config, self.source, self.inspector, self.sinks = config, source, inspector, sinks
        self.spec = spec
        self.stats = LineStats()
        self.source_state = "connecting"
        self.source_error = ""
        self.last_frame_at = 0.0
        self.stop_event = threading.Event()
        self._capture_done = threading.Event()
        self._queue = FrameQueue(config.queue_size, source.live)
        self._pool: WorkerPool | None = None
        self.swap = ModelSwap(self)
        self.on_tick = None  # called about once a second from the loop (progress lines, watchdog pings)

    # ---- what the HTTP app reads
    def status(self) -> dict:
        return {
            **self.stats.snapshot(),
            "station": self.config.station,
            "source": self.source.uri,
            "source_state": self.source_state,
            "source_error": self.source_error,
            "source_live": self.source.live,
            "queued": len(self._queue),
            "model_sha256": getattr(self.inspector.backend, "model_sha256", ""),
            "model": str(getattr(self.inspector.backend, "path", "")),
            "backend": self.inspector.backend.name,
            "workers": self.config.workers,
            "model_swap": self.swap.status(),
            "sinks": [s.status() for s in self.sinks],
        }

    def health(self) -> tuple[bool, str]:
        if self._pool is None:
            return False, "model not loaded yet"
        if self.source_state == "ended":
            return True, "source ended"
        if self.source_state != "connected":
            return False, f"source {self.source_state}: {self.source_error or 'no frames yet'}"
        quiet = time.time() - (self.last_frame_at or self.stats.started)
        if quiet > self.config.stall_s:
            return False, f"no frame for {quiet:.0f} s (stall limit {self.config.stall_s:g} s)"
        return True, "ok"

    def stop(self) -> None:
        self.stop_event.set()

    # ---- the loop
    def start(self) -> None:
        """Open the source (an unreachable one fails here with one line), start workers and sinks."""
        self.source.open()
        self.source_state = "connected"
        self._pool = WorkerPool(self.inspector, self.spec, self.config.workers)
        self._pool.warm_up()
        for sink in self.sinks:
            sink.start()

    def run(self) -> dict:
        if self._pool is None:
            self.start()
        capture = threading.Thread(target=self._capture, name="capture", daemon=True)
        capture.start()
        inflight: deque[tuple[Future, list[Frame]]] = deque()
        depth = 2 * self.config.workers
        next_tick = time.monotonic() + 1.0
        try:
            while True:
                self._switch_model()
                while len(inflight) < depth:
                    backlog = len(self._queue) > 1
                    batch = self._queue.take(CHUNK if backlog else 1, 0.0 if inflight else 0.05)
                    if not batch:
                        break
                    inflight.append((self._pool.submit(batch), batch))
                if inflight:
                    wait([inflight[0][0]], timeout=0.05)
                    while inflight and inflight[0][0].done():
                        future, frames = inflight.popleft()
                        self._emit(future, frames)
                elif self._capture_done.is_set() and not len(self._queue):
                    break
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + 1.0
                    if self.on_tick:
                        self.on_tick(self)
        finally:
            self.stop_event.set()
            capture.join(timeout=5)
            for future, frames in inflight:  # finish what is in flight: every captured board gets its result
                self._emit(future, frames)
            self._pool.close()
            self.swap.close()
            self._close_sinks(deadline_s=30.0)
            self.source.close()
        return self.stats.summary()

    def _close_sinks(self, deadline_s: float) -> None:
        """Flush and close every sink at once, under one deadline: a dead broker must not make the others wait."""
        closers = [threading.Thread(target=sink.close, kwargs={"timeout": deadline_s}, name=f"close-{sink.name}")
                   for sink in self.sinks]
        for t in closers:
            t.start()
        end = time.monotonic() + deadline_s + 2.0
        for t in closers:
            t.join(timeout=max(0.0, end - time.monotonic()))

    def _switch_model(self) -> None:
        """Frames submitted from now on go to the new model's workers; the old ones finish what they hold."""
        ready = self.swap.take()
        if ready is None:
            return
        old = self._pool
        self.inspector, self.spec, self._pool = ready
        threading.Thread(target=old.close, name="retire-workers", daemon=True).start()
        print(f"model swapped: now {self.inspector.backend.model_sha256[:12]} ({self.spec.model})", flush=True)

    def _emit(self, future: Future, frames: list[Frame]) -> None:
        try:
            results: list[Done] = future.result()
        except Exception as exc:  # noqa: BLE001 - a worker died: these boards are ERRORs, the line goes on
            reason = f"inspection worker failed ({type(exc).__name__}: {exc})"
            results = [Done(Inspection.failed(reason, board_id=f.board_id, source=f.source, frame_index=f.index,
                                              time=f.timestamp, station=self.config.station)) for f in frames]
            if self._pool.broken:  # a worker process died (killed, out of memory): start a fresh set, once
                self._pool.close()
                self._pool = WorkerPool(self.inspector, self.spec, self.config.workers)
        done_at = time.time()
        for frame, done in zip(frames, results, strict=True):
            self.stats.record(done.inspection, done_at)
            image = done.image if done.image is not None else (frame.image if self.spec.images != "none" else None)
            template = done.template if done.template is not None else frame.template
            result = Result(done.inspection, image=image, template=template, truth=frame.truth)
            for sink in self.sinks:
                sink.submit(result)

    def _capture(self) -> None:
        """Read frames until stopped or the source ends; reopen a lost source with exponential back-off."""
        backoff, opened = BACKOFF_S[0], True
        try:
            while not self.stop_event.is_set():
                if not opened:
                    try:
                        self.source.open()
                        opened, backoff = True, BACKOFF_S[0]
                        self.source_state, self.source_error = "connected", ""
                    except Exception as exc:  # noqa: BLE001 - try again after the back-off, whatever it was
                        self.source_error = failure_reason(exc)
                        self.stop_event.wait(backoff)
                        backoff = min(backoff * 2, BACKOFF_S[1])
                        continue
                try:
                    frame = self.source.read()
                except SourceEnded:
                    self.source_state = "ended"
                    return
                except Exception as exc:  # noqa: BLE001 - lost, or a driver's own error: reopen, never stop
                    self.source_state, self.source_error, opened = "reconnecting", failure_reason(exc), False
                    self.source.close()
                    continue
                if frame is None:
                    continue
                self.last_frame_at = time.time()
                self.stats.captured()
                self.stats.drop(self._queue.put(frame, self.stop_event))
                if self.config.max_frames and self.stats.frames >= self.config.max_frames:
                    self.source_state = "ended"
                    return
        finally:
            self._capture_done.set()

