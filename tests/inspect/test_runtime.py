"""The line loop in-process: one result per captured frame, bad frames as ERROR rows, drops counted, a lost
source reconnected, status and health over real HTTP, summary counts equal to the database's."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.run import build_runtime
from pcb_inspect.inspect.runtime import FrameQueue, RunConfig, Runtime
from pcb_inspect.inspect.sinks.sqlite import ResultsDB
from pcb_inspect.inspect.sources.base import Frame, Source, SourceEnded, SourceError


def _runtime(tmp_path: Path, source: str, **config) -> Runtime:
    cfg = RunConfig(source=source, station="test", **{"workers": 1, **config})
    return build_runtime(cfg, tmp_path / "r.db", tmp_path / "rejects", (100, 50))


def _db_counts(path: Path) -> dict:
    return ResultsDB(path).counts()


def test_a_dataset_as_a_camera_gives_one_result_per_board(synthetic_root: Path, tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, f"deeppcb://{synthetic_root}?split=PCBData/trainval.txt")
    summary = runtime.run()
    boards = len((synthetic_root / "PCBData/trainval.txt").read_text().split("\n"))
    assert summary["frames"] == summary["inspected"] == boards and summary["dropped"] == 0
    counts = _db_counts(tmp_path / "r.db")
    assert counts["total"] == boards
    for verdict in ("PASS", "FAIL", "REVIEW", "ERROR"):
        assert counts.get(verdict, 0) == summary[verdict.lower()]
    assert summary["fail"] >= 1  # synthetic boards carry injected defects
    assert runtime.source_state == "ended" and runtime.health() == (True, "source ended")
    rejects = list((tmp_path / "rejects").rglob("*_raw.png"))
    assert len(rejects) == summary["fail"] + summary["review"]


def test_bad_frames_are_error_rows_and_the_run_goes_on(tmp_path: Path) -> None:
    from pcb_inspect.inspect.synthetic import generate_board

    board = generate_board(5)
    folder = tmp_path / "boards"
    folder.mkdir()
    cv2.imwrite(str(tmp_path / "template.png"), board.template)
    cv2.imwrite(str(folder / "a_good.png"), board.tested)
    cv2.imwrite(str(folder / "b_small.png"), board.tested[:300, :300])  # not the template's size
    data = bytearray(cv2.imencode(".jpg", board.tested)[1].tobytes())
    data[len(data) // 3 : len(data) // 3 + 64] = b"\xff" * 64
    (folder / "c_corrupt.jpg").write_bytes(bytes(data))
    (folder / "d_empty.png").write_bytes(b"")
    cv2.imwrite(str(folder / "e_good.png"), board.template)
    runtime = _runtime(tmp_path, str(folder), template=tmp_path / "template.png")
    summary = runtime.run()
    assert summary["inspected"] == 5 and summary["error"] == 3
    db = ResultsDB(tmp_path / "r.db")
    by_board = {i.board_id: i for i in db.recent(10)}
    assert str(by_board["a_good"].verdict) == "FAIL" and by_board["a_good"].defects
    assert str(by_board["e_good"].verdict) == "PASS"
    assert "differ in size" in by_board["b_small"].error
    assert "c_corrupt.jpg: JPEG is corrupt" in by_board["c_corrupt"].error
    assert "d_empty.png: file is empty" in by_board["d_empty"].error


class _Flaky(Source):
    """A live camera that is lost after a few frames and comes back after two failed reconnections."""

    live = True

    def __init__(self, image: np.ndarray, template: np.ndarray, lose_at: int, total: int,
                 error: type[Exception] = SourceError) -> None:
        super().__init__("test://flaky")
        self.error = error
        self.image, self.template, self.lose_at, self.total = image, template, lose_at, total
        self.opens = self.failed_opens = 0
        self.lost = False

    def open(self) -> None:
        if self.lost and self.failed_opens < 2:
            self.failed_opens += 1
            raise SourceError("test://flaky: camera not answering")
        self.opens += 1
        self.lost = False

    def read(self) -> Frame | None:
        if self.index >= self.total:
            raise SourceEnded("done")
        if self.index == self.lose_at and self.opens == 1:
            self.lost = True
            raise self.error("test://flaky: lost")
        time.sleep(0.01)
        frame = Frame(self.index, time.time(), self.uri, image=self.image, template=self.template,
                      board_id=f"f{self.index}")
        self.index += 1
        return frame


@pytest.mark.parametrize("error", [SourceError, RuntimeError], ids=["lost", "driver error"])
def test_a_lost_source_is_reconnected_with_back_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    error: type[Exception]) -> None:
    from pcb_inspect.inspect import runtime as rt
    from pcb_inspect.inspect.synthetic import generate_board

    monkeypatch.setattr(rt, "BACKOFF_S", (0.05, 0.2))
    board = generate_board(2)
    runtime = _runtime(tmp_path, "synthetic://?fps=30")
    runtime.source = flaky = _Flaky(board.template, board.template, lose_at=5, total=12, error=error)
    states: list[str] = []
    runtime.on_tick = lambda r: states.append(r.source_state)
    summary = runtime.run()
    assert flaky.opens == 2 and flaky.failed_opens == 2
    assert summary["frames"] == summary["inspected"] == 12  # nothing captured was lost across the outage
    assert _db_counts(tmp_path / "r.db")["total"] == 12


def test_a_live_source_faster_than_the_engine_drops_the_oldest() -> None:
    q = FrameQueue(3, live=True)
    stop = threading.Event()
    dropped = sum(q.put(Frame(i, 0.0, "s"), stop) for i in range(10))
    assert dropped == 7 and len(q) == 3
    assert [f.index for f in q.take(8, 0)] == [7, 8, 9]
    offline = FrameQueue(2, live=False)
    offline.put(Frame(0, 0.0, "s"), stop)
    offline.put(Frame(1, 0.0, "s"), stop)
    stop.set()  # a full offline queue waits for the engine; only a shutdown makes it give up
    assert offline.put(Frame(2, 0.0, "s"), stop) == 1 and len(offline) == 2


def test_drops_are_counted_and_every_frame_is_accounted_for(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "synthetic://?fps=400&boards=4", max_frames=150)
    summary = runtime.run()
    assert summary["frames"] == 150
    assert summary["dropped"] > 0  # 400 frames/s is more than one worker on this machine inspects
    assert summary["inspected"] + summary["dropped"] == 150
    assert _db_counts(tmp_path / "r.db")["total"] == summary["inspected"]


def test_status_and_health_over_http_while_running(tmp_path: Path) -> None:
    from pcb_inspect.inspect.run import serve

    runtime = _runtime(tmp_path, "synthetic://?fps=20&boards=4")
    runtime.start()
    server = serve(runtime, "127.0.0.1:0")
    worker = threading.Thread(target=runtime.run)
    worker.start()
    try:
        deadline = time.time() + 30
        status = {}
        while time.time() < deadline:
            status = json.loads(urllib.request.urlopen(f"{server.url}/api/status", timeout=5).read())
            if status["inspected"] >= 5:
                break
            time.sleep(0.2)
        for key in ("inspected", "pass", "fail", "review", "error", "dropped", "boards_per_s", "p99_ms",
                    "source_state", "model_sha256"):
            assert key in status
        assert status["inspected"] >= 5 and status["source_state"] == "connected"
        assert len(status["model_sha256"]) == 64 and status["sinks"][0]["name"] == "sqlite"
        health = urllib.request.urlopen(f"{server.url}/healthz", timeout=5)
        assert health.status == 200
    finally:
        runtime.stop()
        worker.join(timeout=60)
        server.stop()
    assert not worker.is_alive()


def test_health_says_when_the_source_stalls(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "synthetic://?fps=20", stall_s=0.5)
    assert runtime.health()[0] is False  # nothing loaded yet
    runtime.start()
    try:
        runtime.last_frame_at = time.time() - 5
        ok, reason = runtime.health()
        assert not ok and "no frame for" in reason
        runtime.last_frame_at = time.time()
        assert runtime.health() == (True, "ok")
        runtime.source_state, runtime.source_error = "reconnecting", "camera lost"
        assert runtime.health() == (False, "source reconnecting: camera lost")
    finally:
        runtime.stop()
        runtime.run()


def test_copy_of_dataset_with_a_missing_image_still_inspects_the_rest(synthetic_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    image_rel = (root / "PCBData/test.txt").read_text().split()[0]
    first = root / "PCBData" / image_rel.replace(".jpg", "_test.jpg")
    first.write_bytes(first.read_bytes()[:-500])  # truncated
    runtime = _runtime(tmp_path, f"deeppcb://{root}?split=PCBData/test.txt")
    summary = runtime.run()
    assert summary["error"] == 1 and summary["inspected"] == 4
    (bad,) = ResultsDB(tmp_path / "r.db").recent(10, verdict="ERROR")
    assert "JPEG is truncated" in bad.error and str(first) in bad.error


def test_a_killed_worker_costs_its_boards_an_error_and_the_line_goes_on(tmp_path: Path) -> None:
    import os
    import signal as signals

    runtime = _runtime(tmp_path, "synthetic://?fps=0&boards=4", max_frames=300)
    runtime.start()
    loop = threading.Thread(target=runtime.run)
    loop.start()
    deadline = time.time() + 60
    while runtime.stats.inspected < 20 and time.time() < deadline:
        time.sleep(0.02)
    victim = next(iter(runtime._pool.executor._processes))  # one inspection worker, killed by the OOM killer
    os.kill(victim, signals.SIGKILL)
    loop.join(timeout=120)
    summary = runtime.stats.summary()
    assert summary["inspected"] == 300  # every frame has its result
    errors = [e.error for e in ResultsDB(tmp_path / "r.db").recent(300, verdict="ERROR")]
    lost = [e for e in errors if e.startswith("inspection worker failed (BrokenProcessPool")]
    assert 0 < len(lost) <= 20, errors  # the boards in flight on the dead pool, no more
    assert summary["pass"] + summary["fail"] + summary["review"] >= 280  # a fresh set of workers took over
