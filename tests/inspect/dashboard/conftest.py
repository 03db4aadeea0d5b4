"""A station for the operator page's tests: real feed, results and reject sinks, a synthetic board's pictures,
the page mounted on the runtime's app, and a TestClient on this machine (or elsewhere)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pcb_inspect.inspect import dashboard
from pcb_inspect.inspect.records import Defect, Inspection, Verdict
from pcb_inspect.inspect.server import create_app
from pcb_inspect.inspect.sinks.base import Result
from pcb_inspect.inspect.sinks.rejects import RejectImageSink
from pcb_inspect.inspect.sinks.sqlite import SQLiteSink
from pcb_inspect.inspect.stats import LineStats
from pcb_inspect.inspect.synthetic import generate_board

TOKEN = "line-7-secret-token"
LOCAL = ("127.0.0.1", 50000)
REMOTE = ("10.1.2.3", 50000)


def page_args(http: str = "127.0.0.1:8080", **over) -> argparse.Namespace:
    return argparse.Namespace(**{"http": http, "token_file": None, "feed_images": "rejects",
                                 "shift_starts": "06:00,14:00,22:00", **over})


class FakeRuntime:
    """What the page reads of a runtime: status, health, sinks, stats and the template store."""

    def __init__(self, sinks: list) -> None:
        self.sinks = sinks
        self.stats = LineStats()
        self.spec = argparse.Namespace(templates=None)

    def status(self) -> dict:
        return {**self.stats.snapshot(), "station": "line-7", "source": "synthetic://",
                "source_state": "connected",
                "model_sha256": "ab" * 32, "model": "/models/pcb.onnx", "backend": "onnxruntime-cpu",
                "sinks": [s.status() for s in self.sinks]}

    def health(self) -> tuple[bool, str]:
        return True, "ok"


@dataclass
class Station:
    tmp: Path
    runtime: FakeRuntime
    app: object
    client: TestClient
    db: Path
    feed: object
    rejects: RejectImageSink
    boards: list = field(default_factory=list)

    def inspect(self, verdict: str = "FAIL", seed: int = 1, n_defects: int | None = None,
                **fields) -> Inspection:
        """A synthetic board judged as ``verdict`` (its true defects reported), through every sink."""
        board = generate_board(seed, 256)
        truth = board.ground_truth if n_defects is None else board.ground_truth[:n_defects]
        defects = [Defect(g.cls, 0.97 - 0.01 * k, g.box) for k, g in enumerate(truth)]
        v = Verdict(verdict)
        extra = {Verdict.FAIL: {"defects": defects}, Verdict.REVIEW: {"below_threshold": defects[:1]},
                 Verdict.ERROR: {"error": "registration did not converge"}}.get(v, {})
        i = Inspection(board_id=f"b{len(self.boards):04d}", verdict=v, time=time.time(), station="line-7",
                       source="synthetic://", **{**extra, **fields})
        result = Result(i, image=board.tested, template=board.template, truth=board.ground_truth)
        self.runtime.stats.record(i)
        for sink in self.runtime.sinks:
            sink.submit(result)
        for sink in self.runtime.sinks:
            assert sink.flush(10.0)
        self.boards.append((i, board))
        return i


def make_station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str | None = TOKEN,
                 client: tuple[str, int] = LOCAL, **args) -> Station:
    if token is None:
        monkeypatch.delenv("PCB_INSPECT_TOKEN", raising=False)
    else:
        monkeypatch.setenv("PCB_INSPECT_TOKEN", token)
    ns = page_args(**args)
    db = tmp_path / "line.db"
    sinks = [SQLiteSink(db), *dashboard.make_sinks(ns), RejectImageSink(tmp_path / "line_rejects")]
    for sink in sinks:
        sink.start()
    runtime = FakeRuntime(sinks)
    app = create_app(runtime)
    dashboard.mount(app, runtime, ns)
    feed = next(s for s in sinks if s.name == "feed")
    return Station(tmp_path, runtime, app, TestClient(app, client=client), db, feed, sinks[-1])


@pytest.fixture
def station_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """make(token=..., client=..., **page options) -> Station; its sinks are closed after the test."""
    made: list[Station] = []

    def make(**kw) -> Station:
        folder = tmp_path / f"station{len(made)}"
        folder.mkdir()
        made.append(make_station(folder, monkeypatch, **kw))
        return made[-1]

    yield make
    for s in made:
        for sink in s.runtime.sinks:
            sink.close(5.0)


@pytest.fixture
def station(station_factory) -> Station:  # noqa: ANN001
    return station_factory()
