"""The sink seam: where inspection results go (a results store, reject images, MQTT, a PLC, metrics).

The policy lives here, so a sink only writes. Each sink owns a daemon thread and a bounded queue; the loop
calls :meth:`Sink.submit`, which never raises and never waits longer than ``block_s``, so a slow or broken
sink can cost the line a dropped record (counted) but never a board. In the sink's thread the base opens the
connection (retrying with exponential back-off while ``open()`` raises), writes each result (retrying the
same result, after reopening, while ``write()`` raises), and reports what happened through
:meth:`Sink.status`. A result that can never be written (:class:`SkipItem`) is counted and passed over.

A subclass implements ``open()``, ``write(result)`` and ``teardown()``; all three run in the sink's own
thread, so thread-bound handles (an ``sqlite3`` connection) need no locking.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from pcb_inspect.inspect.errors import ConfigError, PcbInspectError
from pcb_inspect.inspect.records import GroundTruth, Inspection

log = logging.getLogger(__name__)

STATES = ("starting", "ok", "retrying", "failed", "closed")
WANTS_IMAGES = ("none", "rejects", "all")
ON_FULL = ("block", "drop_oldest")
LOG_EVERY_S = 60.0  # a sink that keeps failing logs again at most this often (status always has the latest)


@dataclass
class Result:
    """What a sink receives: the inspection, and the pictures when the sink asked for them."""

    inspection: Inspection
    image: np.ndarray | None = None  # the tested image, 2-D uint8, frame pixels (see Sink.wants_images)
    template: np.ndarray | None = None
    truth: list[GroundTruth] | None = None


class SinkError(PcbInspectError):
    """A sink cannot open or write. ``permanent``: retrying cannot help (a wrong file, a schema too new)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class SkipItem(SinkError):
    """Raised by ``write()``: this result can never be written; count it and go on with the next one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line an operator can read: our own errors by message, others with their type."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, PcbInspectError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:limit]


class Sink(ABC):
    """A destination for results, with its own thread, bounded queue, retry and state.

    Args:
        queue_size: results waiting at most; beyond it the oldest waiting one is dropped (counted).
        on_full: ``"block"``: ``submit`` waits up to ``block_s`` for room, then drops the oldest;
            ``"drop_oldest"``: drop the oldest at once (the loop never waits on this sink).
        block_s: the longest ``submit`` waits.
        retry_s: first back-off after a failure; doubles on each further failure, up to ``retry_max_s``.
    """

    name: str = "sink"
    #: Which results must carry the tested image: "none", "rejects" (FAIL, REVIEW, ERROR) or "all".
    wants_images: str = "none"

    def __init__(self, *, queue_size: int = 1000, on_full: str = "block", block_s: float = 5.0,
                 retry_s: float = 0.2, retry_max_s: float = 30.0) -> None:
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError(f"sink {self.name}: queue_size {queue_size!r} must be a whole number >= 1")
        if on_full not in ON_FULL:
            raise ConfigError(f"sink {self.name}: on_full {on_full!r} is not one of {', '.join(ON_FULL)}")
        if not 0.0 <= block_s <= 300.0:
            raise ConfigError(f"sink {self.name}: block_s {block_s!r} must be in [0, 300] seconds")
        if not 0.0 < retry_s <= retry_max_s <= 3600.0:
            raise ConfigError(f"sink {self.name}: need 0 < retry_s ({retry_s!r}) <= retry_max_s "
                              f"({retry_max_s!r}) <= 3600")
        if self.wants_images not in WANTS_IMAGES:
            raise ConfigError(f"sink {self.name}: wants_images {self.wants_images!r} is not one of "
                              f"{', '.join(WANTS_IMAGES)}")
        self.queue_size, self.on_full, self.block_s = queue_size, on_full, float(block_s)
        self.retry_s, self.retry_max_s = float(retry_s), float(retry_max_s)
        self._cond = threading.Condition()
        # (sequence number, result), oldest first; the thread's current one is out of the queue, in flight
        self._queue: deque[tuple[int, Result]] = deque()
        self._in_flight: int | None = None
        self._next_seq = 0  # every queued result ends as exactly one of written, skipped or dropped
        self._written = self._dropped = self._skipped = self._errors = 0
        self._opened = False  # touched only by the sink's thread
        self._last_log = 0.0
        self._state = "starting"
        self._last_error = ""
        self._stop = False
        self._thread: threading.Thread | None = None

    # -- what a sink implements --------------------------------------------------------------------------

    @abstractmethod
    def open(self) -> None:
        """Connect or create; raise to be retried with back-off (``SinkError(permanent=True)``: give up)."""

    @abstractmethod
    def write(self, result: Result) -> None:
        """Write one result; raise to be retried (after a reopen), ``SkipItem`` to pass it over."""

    def teardown(self) -> None:
        """Release what ``open()`` made; called in the sink's thread, also before a reopen."""

    def stats(self) -> dict:
        """Counters of the sink's own, merged into :meth:`status`."""
        return {}

    # -- what the loop calls -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the sink's thread (it opens the sink there); returns at once."""
        with self._cond:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=f"sink-{self.name}", daemon=True)
        self._thread.start()

    def submit(self, result: Result | Inspection) -> None:
        """Queue a result; never raises. On a full queue, wait up to ``block_s``, then drop the oldest."""
        if isinstance(result, Inspection):
            result = Result(result)
        with self._cond:
            if self._state in ("closed", "failed") or self._stop:  # nothing will write it
                self._dropped += 1
                return
            if len(self._queue) >= self.queue_size and self.on_full == "block":
                deadline = time.monotonic() + self.block_s
                while len(self._queue) >= self.queue_size and not self._stop:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            while len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append((self._next_seq, result))
            self._next_seq += 1
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far is written, skipped or dropped; False on timeout."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            target = self._next_seq
            while self._oldest_unfinished() < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush for up to ``timeout``, drop (counted) what is left and stop the thread (``teardown()`` runs
        there). Returns within about ``timeout`` + 1 s even when a write hangs."""
        deadline = time.monotonic() + max(0.0, timeout)
        flushed = self.flush(timeout)
        with self._cond:
            self._stop = True
            if not flushed:
                self._dropped += len(self._queue)
                self._queue.clear()
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(1.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("sink %s: its thread did not stop within %.1f s (stuck in a write?)",
                            self.name, timeout)
        with self._cond:
            self._state = "closed"
            self._cond.notify_all()

    def status(self) -> dict:
        """name, state, backlog, written, dropped, skipped, errors, last_error, and the sink's own counts."""
        with self._cond:
            backlog = len(self._queue) + (self._in_flight is not None)
            out = {"name": self.name, "state": self._state, "backlog": backlog,
                   "written": self._written, "dropped": self._dropped, "skipped": self._skipped,
                   "errors": self._errors, "last_error": self._last_error}
        out.update(self.stats())
        return out

    # -- the sink's thread -------------------------------------------------------------------------------

    def _oldest_unfinished(self) -> int:
        """The sequence number of the oldest result not yet written, skipped or dropped (FIFO throughout)."""
        if self._in_flight is not None:
            return self._in_flight
        return self._queue[0][0] if self._queue else self._next_seq

    def _failure(self, exc: BaseException, what: str, retrying: bool = True) -> None:
        """Count and remember a failure; log it when the sink starts retrying, else once a minute at most."""
        with self._cond:
            self._errors += 1
            self._last_error = one_line(exc)
            now = time.monotonic()
            entering = retrying and self._state not in ("retrying", "failed", "closed")
            if entering or now - self._last_log > LOG_EVERY_S:
                self._last_log = now
                log.warning("sink %s: %s failed: %s", self.name, what, self._last_error)
            if retrying and self._state not in ("failed", "closed"):
                self._state = "retrying"

    def _recovered(self) -> None:
        with self._cond:
            if self._state == "retrying":
                log.warning("sink %s: working again", self.name)
            if self._state not in ("failed", "closed"):
                self._state = "ok"

    def _sleep(self, seconds: float) -> bool:
        """Wait out a back-off; False when close() asked the thread to stop meanwhile."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._stop:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self._cond.wait(left)
            return False

    def _open(self) -> bool:
        """Open until it works; False when stopped, or when the error is permanent (the sink has failed)."""
        backoff = self.retry_s
        while True:
            try:
                self.open()
                self._opened = True
                self._recovered()
                return True
            except Exception as exc:  # noqa: BLE001 - a sink's failure is retried or reported, never fatal
                self._failure(exc, "open")
                if isinstance(exc, SinkError) and exc.permanent:
                    with self._cond:
                        self._state = "failed"
                    log.error("sink %s: gave up: %s", self.name, self._last_error)
                    return False
            if not self._sleep(backoff):
                return False
            backoff = min(backoff * 2, self.retry_max_s)

    def _deliver(self, result: Result) -> str:
        """Write one result, retrying with back-off (reopening first) until written, skipped or abandoned."""
        backoff = self.retry_s
        while True:
            try:
                if not self._opened:
                    self.open()
                    self._opened = True
                self.write(result)
                self._recovered()
                return "written"
            except SkipItem as exc:
                self._failure(exc, "write", retrying=False)
                self._recovered()  # the sink works; this one result cannot be written
                return "skipped"
            except Exception as exc:  # noqa: BLE001 - retried with back-off; the thread never dies of it
                self._failure(exc, "write" if self._opened else "reopen")
                if self._opened:
                    self._opened = False
                    self._safe_teardown()
                if isinstance(exc, SinkError) and exc.permanent:
                    with self._cond:
                        self._state = "failed"
                    log.error("sink %s: gave up: %s", self.name, self._last_error)
                    return "dropped"
            if not self._sleep(backoff):
                return "dropped"
            backoff = min(backoff * 2, self.retry_max_s)

    def _safe_teardown(self) -> None:
        try:
            self.teardown()
        except Exception as exc:  # noqa: BLE001 - a failed release must not stop a reopen or a close
            log.warning("sink %s: teardown failed: %s", self.name, one_line(exc))

    def _next(self) -> Result | None:
        with self._cond:
            while not self._queue and not self._stop and self._state != "failed":
                self._cond.wait()
            if not self._queue or self._state == "failed":
                return None
            self._in_flight, result = self._queue.popleft()
            self._cond.notify_all()  # room for a blocked submit
            return result

    def _run(self) -> None:
        try:
            if self._open():
                while (result := self._next()) is not None:
                    outcome = self._deliver(result)
                    with self._cond:
                        self._in_flight = None
                        if outcome == "written":
                            self._written += 1
                        elif outcome == "skipped":
                            self._skipped += 1
                        else:
                            self._dropped += 1
                        self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - a bug in a sink shows in status, never vanishes
            self._failure(exc, "thread")
            with self._cond:
                self._state = "failed"
            log.exception("sink %s: its thread died", self.name)
        finally:
            with self._cond:  # nothing will write what is left: count it, so flush() and close() return
                self._dropped += len(self._queue) + (self._in_flight is not None)
                self._queue.clear()
                self._in_flight = None
                self._cond.notify_all()
            if self._opened:
                self._opened = False
                self._safe_teardown()


class SinkKind(StrEnum):
    SQLITE = "sqlite"
    REJECTS = "rejects"
    MQTT = "mqtt"
    OPCUA = "opcua"
    MODBUS = "modbus"
    METRICS = "metrics"


def sink_table() -> dict[SinkKind, type[Sink]]:
    """The one table of sinks. Imported when asked for, so a sink's client library (MQTT, OPC UA, Modbus)
    is loaded only on a box that uses that sink, and this module stays importable without them."""
    from pcb_inspect.inspect.prometheus import MetricsSink
    from pcb_inspect.inspect.sinks.modbus import ModbusSink
    from pcb_inspect.inspect.sinks.mqtt import MqttSink
    from pcb_inspect.inspect.sinks.opcua import OpcUaSink
    from pcb_inspect.inspect.sinks.rejects import RejectImageSink
    from pcb_inspect.inspect.sinks.sqlite import SQLiteSink

    return {SinkKind.SQLITE: SQLiteSink, SinkKind.REJECTS: RejectImageSink, SinkKind.MQTT: MqttSink,
            SinkKind.OPCUA: OpcUaSink, SinkKind.MODBUS: ModbusSink, SinkKind.METRICS: MetricsSink}


def make_sink(name: str, **options: object) -> Sink:
    """A sink by kind, with its options checked by name (one-line ConfigError naming the valid ones)."""
    try:
        kind = SinkKind(name)
    except ValueError:
        raise ConfigError(f"sink {name!r} is not one of {', '.join(SinkKind)}") from None
    cls = sink_table()[kind]
    valid = _option_names(cls)
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(f"sink {kind}: unknown option(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(sorted(valid))}")
    try:
        return cls(**options)
    except TypeError as exc:  # a missing required option
        raise ConfigError(f"sink {kind}: {exc}") from None


def _option_names(cls: type[Sink]) -> set[str]:
    names: set[str] = set()
    for klass in (cls, Sink):
        names |= {p.name for p in inspect.signature(klass.__init__).parameters.values()
                  if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return names
