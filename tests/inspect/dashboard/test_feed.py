"""The live feed, the shift tally, the event stream over real HTTP, and the token rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime

import numpy as np
import pytest

from pcb_inspect.inspect.auth import check_exposure, is_loopback, load_token
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.feed import LATEST, FeedSink
from pcb_inspect.inspect.records import Defect, Inspection, Verdict
from pcb_inspect.inspect.server import HttpServer
from pcb_inspect.inspect.shift import ShiftTally, parse_shift_starts, shift_start
from pcb_inspect.inspect.sinks.base import Result
from pcb_inspect.inspect.sinks.sqlite import SQLiteSink

EXE = os.path.join(os.path.dirname(sys.executable), "pcb-inspect")


def _inspection(verdict: str = "FAIL", when: float | None = None, cls: str = "short") -> Inspection:
    defects = [Defect(cls, 0.9, (1, 2, 5, 6))] if verdict == "FAIL" else []
    extra = {"error": "lost"} if verdict == "ERROR" else {}
    return Inspection(board_id="b", verdict=Verdict(verdict), defects=defects, time=when or time.time(),
                      **extra)


def test_feed_keeps_pictures_of_rejects_and_the_newest_boards_sharing_templates() -> None:
    feed = FeedSink(keep=10, keep_pictures=3)
    assert feed.wants_images == "rejects"
    template = np.zeros((8, 8), np.uint8)
    results = []
    for k in range(12):
        verdict = "PASS" if k % 2 else "FAIL"
        image = np.full((8, 8), k, np.uint8)
        results.append(Result(_inspection(verdict), image=image, template=template.copy()))
        feed.write(results[-1])
    ids = [r.inspection.id for r in results]
    assert [i.id for i in feed.recent(20)] == ids[::-1][:10]
    assert [i.id for i in feed.recent(2, rejects_only=True)] == [ids[10], ids[8]]
    kept = {k for k in range(12) if feed.pictures(ids[k]).image is not None}
    assert kept == {6, 8, 10} | set(range(12 - LATEST, 12))  # the last 3 rejects, the last LATEST boards
    assert feed.stats()["templates"] == 1  # one template in memory, by content, for all the rejects kept
    assert feed.pictures(ids[6]).template is not None and feed.pictures(ids[0]).image is None
    assert feed.pictures(ids[0]).template is not None  # an older reject keeps its (shared) template
    assert feed.pictures(ids[1]).template is None  # an older PASS board keeps nothing
    seq, latest, rejects, boards = feed.since(9)
    assert (seq, latest.id, [r.id for r in rejects], boards) == (12, ids[11], [ids[10]], 3)
    assert feed.stats()["picture_bytes"] == 3 * 64 + 64
    small = FeedSink(keep_pictures=10, keep_bytes=3 * 64)  # a byte budget too: 2 rejects and their template
    for r in results:
        small.write(r)
    assert list(small._pictures) == [ids[8], ids[10]] and small.stats()["picture_bytes"] == 192
    distinct = FeedSink(keep=3)  # every board its own template: the templates of the last `keep` rejects
    for k, r in enumerate(results):
        distinct.write(Result(r.inspection, image=r.image, template=np.full((8, 8), k, np.uint8)))
    assert distinct.stats()["templates"] == 3
    assert distinct.pictures(ids[6]).template is not None and distinct.pictures(ids[4]).template is None
    assert FeedSink(images="all").wants_images == "all"
    with pytest.raises(ConfigError, match="--feed-images"):
        FeedSink(images="some")


def test_shift_tally_counts_rolls_over_and_seeds_from_the_database(tmp_path) -> None:
    starts = parse_shift_starts("06:00, 18:00")
    assert starts == [(6, 0), (18, 0)]
    for bad in ("6", "25:00", "06:00,06:00", "06:61"):
        with pytest.raises(ConfigError, match="--shift-starts"):
            parse_shift_starts(bad)
    noon = datetime(2026, 3, 4, 12, 0).timestamp()
    assert shift_start(starts, noon) == datetime(2026, 3, 4, 6, 0).timestamp()
    night = datetime(2026, 3, 4, 3, 0).timestamp()
    assert shift_start(starts, night) == datetime(2026, 3, 3, 18, 0).timestamp()
    tally = ShiftTally(starts)
    now = time.time()
    earlier = [_inspection(v, now - 30 + k) for k, v in enumerate(["PASS", "FAIL", "PASS", "ERROR"])]
    sink = SQLiteSink(tmp_path / "r.db")
    sink.start()
    for i in earlier:
        sink.submit(i)
    sink.close(5.0)
    tally.seed(tmp_path / "r.db", until=now)  # an earlier process's boards of this shift
    tally.add(_inspection("FAIL", now + 1, cls="spur"))
    tally.add(_inspection("REVIEW", now + 2))
    snap = tally.snapshot()
    assert snap["counts"] == {"PASS": 2, "FAIL": 2, "REVIEW": 1, "ERROR": 1, "total": 6}
    assert snap["yield_pct"] == pytest.approx(40.0)  # 2 of 5 judged (ERROR is not judged)
    assert snap["pareto_shift"] == [{"cls": "short", "count": 1, "cumulative_pct": 50.0},
                                    {"cls": "spur", "count": 1, "cumulative_pct": 100.0}]
    # the last boards are this process's only
    assert snap["pareto_recent"] == [{"cls": "spur", "count": 1, "cumulative_pct": 100.0}]
    assert sum(p["boards"] for p in snap["trend"]) == 6 and len(snap["trend"]) <= 36
    tally._next = 0.0  # the shift ends: counting starts again
    assert tally.summary()["counts"]["total"] == 0


def _serve(feed: FeedSink):  # noqa: ANN202
    from pcb_inspect.inspect.auth import install_guard
    from pcb_inspect.inspect.dashboard_api import build_router
    from pcb_inspect.inspect.dashboard_state import Dashboard
    from pcb_inspect.inspect.server import create_app

    class Runtime:
        sinks = [feed]

        def status(self) -> dict:
            return {"inspected": 0, "station": "s"}

        def health(self) -> tuple[bool, str]:
            return True, "ok"

    app = create_app(Runtime())
    install_guard(app, None)
    app.state.dashboard = Dashboard(Runtime(), feed, None, None, __import__("pathlib").Path("/nonexistent"))
    app.include_router(build_router())
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    return server


def test_event_stream_sends_at_most_about_ten_events_a_second_at_150_boards_a_second() -> None:
    feed = FeedSink()
    feed.start()
    server = _serve(feed)
    events: list[dict] = []
    stop = threading.Event()

    def line() -> None:  # 150 boards a second, a third of them rejects
        k = 0
        while not stop.is_set():
            feed.submit(Result(_inspection("FAIL" if k % 3 == 0 else "PASS")))
            k += 1
            time.sleep(1 / 150)

    try:
        with urllib.request.urlopen(f"{server.url}/api/events", timeout=10) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            producer = threading.Thread(target=line, daemon=True)
            producer.start()
            started = time.monotonic()
            while time.monotonic() - started < 2.0:
                text = stream.readline().decode()
                if text.startswith("data: "):
                    events.append(json.loads(text[6:]))
    finally:
        stop.set()
        feed.close(2.0)
        server.stop()
    per_s = (len(events) - 1) / 2.0
    boards = sum(e["boards"] for e in events)
    assert 4 <= per_s <= 11, per_s  # ~10 a second, not 150
    assert boards == events[-1]["seq"] - events[0]["seq"] > 100  # yet every board is accounted for
    assert all(len(e["rejects"]) <= 12 for e in events) and any(e["rejects"] for e in events)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    assert events[-1]["inspection"]["verdict"] in ("PASS", "FAIL") and "status" in events[-1]


def test_token_sources_and_exposure(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("s3cret-line-token\nsecond line ignored\n")
    assert load_token(path, environ={}) == "s3cret-line-token"
    assert load_token(None, environ={"PCB_INSPECT_TOKEN": " env-token-123 "}) == "env-token-123"
    assert load_token(None, environ={}) is None
    for text in ("short\n", "has space inside\n", "\n"):
        path.write_text(text)
        with pytest.raises(ConfigError, match="at least 8 characters") as exc:
            load_token(path, environ={})
        assert text.strip() not in str(exc.value) or not text.strip()
    with pytest.raises(ConfigError, match="no such file"):
        load_token(tmp_path / "missing", environ={})
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"))
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and not is_loopback("::")
    check_exposure("127.0.0.1:8080", None)
    check_exposure("off", None)
    check_exposure("0.0.0.0:8080", "a-token-12345")
    with pytest.raises(ConfigError, match="serves beyond this machine"):
        check_exposure("0.0.0.0:8080", None)


def test_run_refuses_a_network_address_without_a_token_before_loading_anything(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PCB_INSPECT_TOKEN"}
    started = time.monotonic()
    r = subprocess.run([EXE, "run", "--source", "synthetic://?fps=0", "--db", str(tmp_path / "r.db"),
                        "--http", "0.0.0.0:0"],
                       capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "serves beyond this machine" in lines[0] and "PCB_INSPECT_TOKEN" in lines[0]
    assert not (tmp_path / "r.db").exists()  # refused before the results store or the model was opened
    assert time.monotonic() - started < 30
