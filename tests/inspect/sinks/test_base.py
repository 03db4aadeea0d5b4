"""The sink policy (thread, bounded queue, back-off, state, counts), checked with a toy sink."""

from __future__ import annotations

import threading
import time

import pytest

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.sinks.base import Result, Sink, SinkError, SkipItem, make_sink

FAST = dict(retry_s=0.01, retry_max_s=0.05)


class Toy(Sink):
    """Fails its first ``fail_opens`` opens and ``fail_writes`` writes (or every write), then records ids."""

    name = "toy"

    def __init__(self, fail_opens: int = 0, fail_writes: int = 0, forever: bool = False, **options) -> None:
        super().__init__(**options)
        self.fail_opens, self.fail_writes, self.forever = fail_opens, fail_writes, forever
        self.opens = self.write_failures = self.teardowns = 0
        self.open_error: Exception | None = None
        self.skip_boards: set[str] = set()
        self.written: list[str] = []
        self.threads: set[str] = set()

    def open(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.opens += 1
        if self.open_error is not None:
            raise self.open_error
        if self.opens <= self.fail_opens:
            raise OSError("broker unreachable")

    def write(self, result: Result) -> None:
        self.threads.add(threading.current_thread().name)
        if result.inspection.board_id in self.skip_boards:
            raise SkipItem(f"cannot write {result.inspection.board_id}")
        if self.forever or self.write_failures < self.fail_writes:
            self.write_failures += 1
            raise RuntimeError("write timed out\nsecond line")
        self.written.append(result.inspection.board_id)

    def teardown(self) -> None:
        self.teardowns += 1


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def test_retries_open_and_write_with_backoff_then_writes_in_order(make_inspection) -> None:
    sink = Toy(fail_opens=2, fail_writes=2, **FAST)
    sink.start()
    for k in range(3):
        sink.submit(Result(make_inspection(index=k)))
    assert sink.flush(5.0)
    assert sink.written == ["board0", "board1", "board2"]
    s = sink.status()
    assert (s["state"], s["written"], s["dropped"], s["errors"], s["backlog"]) == ("ok", 3, 0, 4, 0)
    assert s["last_error"] == "RuntimeError: write timed out second line"  # one line, with its type
    assert sink.opens == 5  # 2 failed opens, 1 good, and a reopen before each retried write
    assert sink.teardowns == 2
    sink.close(1.0)
    assert sink.teardowns == 3 and sink.status()["state"] == "closed"
    assert sink.threads == {"sink-toy"}  # open, write and teardown all ran in the sink's own thread


def test_state_moves_starting_retrying_ok_closed(make_inspection) -> None:
    sink = Toy(**FAST)
    sink.open_error = ConnectionRefusedError("connection refused")
    assert sink.status()["state"] == "starting"
    sink.start()
    assert wait_for(lambda: sink.status()["state"] == "retrying")
    assert "connection refused" in sink.status()["last_error"]
    sink.submit(make_inspection())  # an Inspection is taken as Result(inspection)
    assert sink.status()["backlog"] == 1
    sink.open_error = None
    assert wait_for(lambda: sink.status()["state"] == "ok")
    assert sink.flush(2.0) and sink.written == ["board0"]
    sink.close(1.0)
    assert sink.status()["state"] == "closed"
    sink.submit(make_inspection())  # after close: counted, not raised
    assert sink.status()["dropped"] == 1


def test_permanent_open_error_fails_the_sink_and_counts_what_comes(make_inspection) -> None:
    sink = Toy(**FAST)
    sink.open_error = SinkError("schema version 9 is newer than this program", permanent=True)
    sink.start()
    assert wait_for(lambda: sink.status()["state"] == "failed")
    sink.submit(make_inspection())
    s = sink.status()
    assert s["dropped"] == 1 and s["last_error"] == "schema version 9 is newer than this program"
    assert sink.flush(0.5)
    sink.close(0.5)


def test_skip_item_is_counted_and_the_next_one_written(make_inspection) -> None:
    sink = Toy(**FAST)
    sink.skip_boards = {"board1"}
    sink.start()
    for k in range(3):
        sink.submit(make_inspection(index=k))
    assert sink.flush(2.0)
    s = sink.status()
    assert sink.written == ["board0", "board2"]
    assert (s["state"], s["written"], s["skipped"], s["errors"]) == ("ok", 2, 1, 1)
    assert s["last_error"] == "cannot write board1"
    sink.close(1.0)


def test_full_queue_drops_the_oldest_and_counts_it(make_inspection) -> None:
    sink = Toy(queue_size=3, on_full="drop_oldest", **FAST)
    t0 = time.monotonic()
    for k in range(5):  # not started yet: nothing drains the queue
        sink.submit(make_inspection(index=k))
    assert time.monotonic() - t0 < 2.0
    assert (sink.status()["backlog"], sink.status()["dropped"]) == (3, 2)
    assert not sink.flush(0.05)
    sink.start()
    assert sink.flush(2.0)
    assert sink.written == ["board2", "board3", "board4"]
    sink.close(1.0)


def test_flush_waits_for_the_result_in_flight_while_newer_ones_are_dropped(make_inspection) -> None:
    gate = threading.Event()
    sink = Toy(queue_size=1, on_full="drop_oldest", **FAST)
    real_write = sink.write
    sink.write = lambda result: (gate.wait(5), real_write(result))
    sink.start()
    sink.submit(make_inspection(index=0))
    assert wait_for(lambda: sink.status()["backlog"] == 1 and not sink._queue)  # board0 in flight
    for k in range(1, 6):
        sink.submit(make_inspection(index=k))
    assert sink.status()["dropped"] == 4
    assert not sink.flush(0.1)  # board0 is not written yet, however many newer ones were dropped
    gate.set()
    assert sink.flush(2.0) and sink.written == ["board0", "board5"]
    sink.close(1.0)


def test_block_waits_at_most_block_s_then_drops_the_oldest(make_inspection) -> None:
    sink = Toy(queue_size=2, block_s=0.2, **FAST)
    sink.submit(make_inspection(index=0))
    sink.submit(make_inspection(index=1))
    t0 = time.monotonic()
    sink.submit(make_inspection(index=2))
    waited = time.monotonic() - t0
    assert 0.15 <= waited < 1.0
    assert (sink.status()["backlog"], sink.status()["dropped"]) == (2, 1)
    sink.start()
    assert sink.flush(2.0) and sink.written == ["board1", "board2"]
    sink.close(1.0)


def test_block_is_released_as_soon_as_the_sink_makes_room(make_inspection) -> None:
    sink = Toy(queue_size=1, block_s=5.0, **FAST)
    sink.start()
    t0 = time.monotonic()
    for k in range(50):
        sink.submit(make_inspection(index=k))
    assert time.monotonic() - t0 < 2.0
    assert sink.flush(2.0)
    assert len(sink.written) + sink.status()["dropped"] == 50
    sink.close(1.0)


def test_a_sink_failing_forever_never_blocks_submit_beyond_block_s(make_inspection) -> None:
    sink = Toy(forever=True, queue_size=2, block_s=0.05, **FAST)
    sink.start()
    slowest = 0.0
    for k in range(10):
        t0 = time.monotonic()
        sink.submit(make_inspection(index=k))
        slowest = max(slowest, time.monotonic() - t0)
    assert slowest < 0.5
    s = sink.status()
    assert s["state"] == "retrying" and s["dropped"] >= 7 and s["errors"] >= 1
    assert not sink.flush(0.1)
    t0 = time.monotonic()
    sink.close(0.3)
    assert time.monotonic() - t0 < 2.5
    s = sink.status()
    assert s["state"] == "closed" and s["backlog"] == 0
    assert s["written"] + s["skipped"] + s["dropped"] == 10  # every result accounted for
    assert not sink._thread.is_alive()


def test_flush_and_close_of_a_sink_never_started(make_inspection) -> None:
    sink = Toy(**FAST)
    assert sink.flush(0.01)  # nothing submitted: nothing to wait for
    sink.submit(make_inspection())
    assert not sink.flush(0.05)
    sink.close(0.05)
    assert sink.status()["dropped"] == 1 and sink.status()["state"] == "closed" and sink.teardowns == 0


@pytest.mark.parametrize("options, words", [
    (dict(queue_size=0), "queue_size"),
    (dict(on_full="wait"), "on_full"),
    (dict(block_s=-1), "block_s"),
    (dict(retry_s=5, retry_max_s=1), "retry_s"),
])
def test_bad_options_are_one_line_config_errors(options, words) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        Toy(**options)
    assert "\n" not in str(info.value)


def test_make_sink_chooses_from_the_table(tmp_path) -> None:
    with pytest.raises(ConfigError, match="'kafka' is not one of sqlite, rejects, mqtt, opcua, modbus, metrics"):
        make_sink("kafka")
    with pytest.raises(ConfigError, match="unknown option.*colour.*valid:.*path"):
        make_sink("sqlite", path=tmp_path / "r.db", colour="red")
    with pytest.raises(ConfigError, match="path"):
        make_sink("sqlite")
    sink = make_sink("sqlite", path=tmp_path / "r.db", queue_size=10)
    assert (sink.name, sink.wants_images, sink.queue_size) == ("sqlite", "none", 10)
    assert make_sink("rejects", folder=tmp_path / "rejects").wants_images == "rejects"
