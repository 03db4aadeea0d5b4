"""Hot model swap: a new model is loaded and self-checked beside the running one, and the loop switches to it
only when it is ready; a model that fails to load or to pass its self-check is reported, and the old one keeps
inspecting. No frame is lost or inspected twice: frames already handed to the old workers finish there, every
later frame goes to the new ones, and each inspection records the sha256 of the model that judged it.

Asked for by SIGHUP (re-reads ``--model``, e.g. a deploy root's ``current/model.onnx`` symlink after
``deploy activate``) or ``POST /api/model``.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from pcb_inspect.inspect.errors import ConfigError, ModelError

#: The self-check board: a synthetic board with injected defects and its template, both moved and degraded as
#: a camera sees them, judged against the template. A model must fail the first and pass the second.
SELF_CHECK_SEED = 21


def self_check(inspector) -> None:  # noqa: ANN001 - an Inspector
    """Raise ModelError when a loaded model cannot do the job on a board whose answer is known."""
    import numpy as np

    from pcb_inspect.inspect.degrade import move_and_degrade
    from pcb_inspect.inspect.records import Verdict
    from pcb_inspect.inspect.synthetic import generate_board

    board, rng = generate_board(SELF_CHECK_SEED), np.random.default_rng(SELF_CHECK_SEED)
    bad = inspector.inspect(move_and_degrade(board.tested, rng).image, board.template, board_id="self-check-defects")
    good = inspector.inspect(move_and_degrade(board.template, rng).image, board.template, board_id="self-check-clean")
    for result in (bad, good):
        if result.verdict is Verdict.ERROR:
            raise ModelError(f"self-check: {result.error}")
    if bad.verdict is Verdict.PASS:
        raise ModelError(f"self-check: no defect found on a board with {len(board.ground_truth)} injected defects")
    if good.verdict is Verdict.FAIL:
        raise ModelError(f"self-check: {len(good.defects)} defect(s) reported on a defect-free board")


class ModelSwap:
    """One swap at a time: ``request`` starts loading in a thread; the loop ``take``s the ready model."""

    def __init__(self, runtime) -> None:  # noqa: ANN001 - the Runtime
        self.runtime = runtime
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = None  # (inspector, spec, pool) once loaded, checked and warm
        self.state, self.error, self.requested, self.at, self.swaps = "idle", "", "", 0.0, 0

    def request(self, model: str | Path | None = None) -> dict:
        """Load ``model`` (None: the configured ``--model`` again) beside the running one."""
        with self._lock:
            if self.state == "loading":
                raise ConfigError(f"a model swap is already loading ({self.requested}); try again when it is done")
            self.state, self.error, self.at = "loading", "", time.time()
            self.requested = str(model if model is not None else self.runtime.config.model or "the shipped model")
            self._thread = threading.Thread(target=self._prepare, args=(model,), name="model-swap", daemon=True)
            self._thread.start()
            return self.status()

    def _prepare(self, model: str | Path | None) -> None:
        from pcb_inspect.inspect.engine import Inspector
        from pcb_inspect.inspect.workers import WorkerPool
        from pcb_inspect.models.registry import open_backend, resolve_model

        runtime = self.runtime
        try:
            path = resolve_model(model if model is not None else runtime.config.model, runtime.config.backend)
            path = path.resolve()  # a symlink (a deploy root's current/) is followed now, once
            inspector = Inspector(open_backend(path, backend=runtime.config.backend))
            self_check(inspector)
            spec = replace(runtime.spec, model=str(path))
            pool = WorkerPool(inspector, spec, runtime.config.workers)
            pool.warm_up()
        except Exception as exc:  # noqa: BLE001 - any failure leaves the old model running
            with self._lock:
                self.state, self.at = "failed", time.time()
                self.error = " ".join(str(exc).split()) or type(exc).__name__
            print(f"model swap refused, the running model stays: {self.error}", file=sys.stderr, flush=True)
            return
        with self._lock:
            self._ready = (inspector, spec, pool)

    def take(self):  # noqa: ANN201 - (Inspector, WorkerSpec, WorkerPool) | None
        """The loaded model, once, for the loop to switch to."""
        with self._lock:
            ready, self._ready = self._ready, None
            if ready is not None:
                self.state, self.at, self.swaps = "done", time.time(), self.swaps + 1
            return ready

    def close(self) -> None:
        """At the end of a run: wait for a loading model and release its workers."""
        if self._thread is not None:
            self._thread.join(timeout=120)
        ready = self.take()
        if ready is not None:
            ready[2].close()

    def status(self) -> dict:
        return {"state": self.state, "requested": self.requested, "error": self.error, "at": self.at,
                "swaps": self.swaps}
