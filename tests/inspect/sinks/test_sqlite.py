"""The results store on real SQLite files: round trip, queries, duplicates, concurrent reads, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.sinks.sqlite import SCHEMA_VERSION, ResultsDB, SQLiteSink

FAST = dict(retry_s=0.01, retry_max_s=0.05)


def write_all(path: Path, inspections, **options) -> SQLiteSink:
    sink = SQLiteSink(path, **FAST, **options)
    sink.start()
    for i in inspections:
        sink.submit(i)
    assert sink.flush(10.0)
    sink.close(5.0)
    return sink


def test_round_trip_keeps_every_field_and_defect(tmp_path, make_inspection) -> None:
    fail = make_inspection("FAIL", n_defects=3, n_below=2)
    review = make_inspection("REVIEW", n_below=2, index=1)
    error = make_inspection("ERROR", index=2)
    sink = write_all(tmp_path / "results.db", [fail, review, error])
    assert sink.status()["written"] == 3 and sink.status()["errors"] == 0
    db = ResultsDB(tmp_path / "results.db")
    for original in (fail, review, error):
        assert db.get(original.id).to_dict() == original.to_dict()
    assert db.get("0" * 32) is None
    conn = sqlite3.connect(tmp_path / "results.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT n_defects FROM inspections WHERE id = ?", (fail.id,)).fetchone()[0] == 3
    assert conn.execute("SELECT COUNT(*), SUM(reported) FROM defects WHERE inspection_id = ?",
                        (fail.id,)).fetchone() == (5, 3)


def test_counts_and_recent(tmp_path, make_inspection) -> None:
    verdicts = ["PASS", "FAIL", "PASS", "REVIEW", "ERROR", "FAIL", "PASS"]
    t0 = 1_700_000_000.0
    items = [make_inspection(v, index=k, time=t0 + k) for k, v in enumerate(verdicts)]
    write_all(tmp_path / "r.db", items)
    db = ResultsDB(tmp_path / "r.db")
    assert db.counts() == {"PASS": 3, "FAIL": 2, "REVIEW": 1, "ERROR": 1, "total": 7}
    assert db.counts(since=t0 + 4) == {"PASS": 1, "FAIL": 1, "REVIEW": 0, "ERROR": 1, "total": 3}
    assert [i.id for i in db.recent(3)] == [items[6].id, items[5].id, items[4].id]
    fails = db.recent(10, verdict="FAIL")
    assert [i.id for i in fails] == [items[5].id, items[1].id]
    assert fails[0].to_dict() == items[5].to_dict()
    with pytest.raises(ConfigError, match="verdict"):
        db.recent(10, verdict="BROKEN")
    with pytest.raises(ConfigError, match="limit"):
        db.recent(0)
    with pytest.raises(ConfigError, match="32 lowercase hex"):
        db.get("../../etc/passwd")


def test_the_same_id_twice_is_stored_once(tmp_path, make_inspection) -> None:
    item = make_inspection("FAIL", n_defects=2, n_below=1)
    sink = write_all(tmp_path / "r.db", [item, item])
    write_all(tmp_path / "r.db", [item])  # and again after a restart
    assert sink.status()["written"] == 2
    conn = sqlite3.connect(tmp_path / "r.db")
    assert conn.execute("SELECT COUNT(*) FROM inspections").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM defects").fetchone()[0] == 3


def test_reads_while_the_sink_writes(tmp_path, make_inspection) -> None:
    path = tmp_path / "r.db"
    db = ResultsDB(path)
    assert db.counts()["total"] == 0 and db.recent(5) == []  # before the sink has made the file
    sink = SQLiteSink(path, **FAST)
    sink.start()
    n = 300
    feeder = threading.Thread(target=lambda: [sink.submit(make_inspection(index=k)) for k in range(n)])
    feeder.start()
    seen, problems = [], []
    deadline = time.monotonic() + 30
    while (feeder.is_alive() or sink.status()["backlog"]) and time.monotonic() < deadline:
        total = db.counts()["total"]
        for i in db.recent(20):
            if len(i.defects) != 2 or len(i.below_threshold) != 1:
                problems.append(i.id)
        seen.append(total)
    feeder.join()
    assert sink.flush(10.0)
    sink.close(5.0)
    assert not problems
    assert seen == sorted(seen) and len(set(seen)) >= 2  # read during the writing, never going backwards
    assert db.counts()["total"] == n and sink.status()["errors"] == 0


def test_bad_paths_are_refused_before_the_run(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        SQLiteSink(tmp_path / "missing" / "r.db")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="is a folder"):
        SQLiteSink(tmp_path)
    (tmp_path / "notes.db").write_text("these are not the rows you are looking for")
    with pytest.raises(ConfigError, match="not an SQLite file"):
        SQLiteSink(tmp_path / "notes.db")
    with pytest.raises(ConfigError, match="synchronous"):
        SQLiteSink(tmp_path / "r.db", synchronous="OFF")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(ConfigError, match="not writable"):
            SQLiteSink(ro / "r.db")


def test_a_newer_schema_fails_the_sink_not_the_line(tmp_path, make_inspection) -> None:
    conn = sqlite3.connect(tmp_path / "r.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    sink = SQLiteSink(tmp_path / "r.db", **FAST)
    sink.start()
    deadline = time.monotonic() + 5
    while sink.status()["state"] != "failed" and time.monotonic() < deadline:
        time.sleep(0.01)
    sink.submit(make_inspection())
    s = sink.status()
    assert s["state"] == "failed" and "newer" in s["last_error"] and s["dropped"] == 1
    sink.close(1.0)
    with pytest.raises(ConfigError, match="newer"):
        ResultsDB(tmp_path / "r.db").counts()


WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from conftest import inspection
from pcb_inspect.inspect.sinks.sqlite import SQLiteSink

sink = SQLiteSink(sys.argv[1], retry_s=0.01, retry_max_s=0.05, queue_size=10000)
sink.start()
k = 0
while True:
    for _ in range(20):
        sink.submit(inspection("FAIL", n_defects=1 + k % 7, n_below=k % 5, index=k))
        k += 1
    sink.flush(10.0)
    print(sink.status()["written"], flush=True)
"""


def test_kill_9_mid_run_leaves_a_clean_database(tmp_path) -> None:
    path = tmp_path / "r.db"
    committed = 0
    for round_ in range(3):  # later rounds also open a database left with a hot WAL by a kill
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(Path(__file__).parent)],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = 0
        try:
            for line in proc.stdout:
                seen = int(line)
                if seen >= 100:
                    break
            time.sleep(0.01 + 0.03 * round_)  # kill at a different point of the writing each round
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert seen >= 100, proc.stderr.read()
        committed += seen
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT id, frame_index, n_defects FROM inspections").fetchall()
        assert len(rows) >= committed  # every commit a writer saw survived
        counts = dict(((iid, rep), n) for iid, rep, n in conn.execute(
            "SELECT inspection_id, reported, COUNT(*) FROM defects GROUP BY inspection_id, reported"))
        for iid, k, n_defects in rows:  # each inspection whole: its row and all its defect rows, or nothing
            assert n_defects == 1 + k % 7 == counts[(iid, 1)]
            assert counts.get((iid, 0), 0) == k % 5
        orphans = conn.execute("SELECT COUNT(*) FROM defects WHERE inspection_id NOT IN "
                               "(SELECT id FROM inspections)").fetchone()[0]
        assert orphans == 0
        conn.close()
        assert ResultsDB(path).counts()["total"] == len(rows)
