"""`pcb-inspect run` as a process: SIGTERM ends it cleanly with a summary equal to the database, and `kill -9`
at any moment leaves a database that opens clean with every committed inspection whole."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pcb_inspect.inspect.sinks.sqlite import ResultsDB

EXE = os.path.join(os.path.dirname(sys.executable), "pcb-inspect")


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([EXE, "run", "--db", str(tmp_path / "r.db"), "--http", "off", "--workers", "1", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def _wait_for_rows(db: Path, n: int, timeout: float = 60) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        total = ResultsDB(db).counts()["total"] if db.exists() else 0
        if total >= n:
            return total
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} inspections in {db} after {timeout} s")


def test_sigterm_finishes_in_flight_boards_and_prints_a_summary_equal_to_the_db(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--source", "synthetic://?fps=40&boards=4")
    _wait_for_rows(tmp_path / "r.db", 10)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping capture" in err
    m = re.search(r"summary: frames (\d+)  inspected (\d+)  pass (\d+)  fail (\d+)  review (\d+)  error (\d+)  "
                  r"dropped (\d+)", out)
    assert m, out
    frames, inspected, passed, failed, review, error, dropped = map(int, m.groups())
    counts = ResultsDB(tmp_path / "r.db").counts()
    assert counts["total"] == inspected == passed + failed + review + error
    assert (counts["PASS"], counts["FAIL"], counts["REVIEW"], counts["ERROR"]) == (passed, failed, review, error)
    assert frames == inspected + dropped


@pytest.mark.parametrize("after_rows", [1, 25])
def test_kill_9_leaves_a_clean_db_with_whole_inspections(tmp_path: Path, after_rows: int) -> None:
    proc = _start(tmp_path, "--source", "synthetic://?fps=0&boards=4")
    _wait_for_rows(tmp_path / "r.db", after_rows)
    proc.kill()  # SIGKILL: no handler, no flush
    proc.communicate(timeout=30)
    db = tmp_path / "r.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT id, n_defects, verdict FROM inspections").fetchall()
        assert len(rows) >= after_rows
        for inspection_id, n_defects, verdict in rows:
            reported = conn.execute("SELECT COUNT(*) FROM defects WHERE inspection_id = ? AND reported",
                                    (inspection_id,)).fetchone()[0]
            assert reported == n_defects, (inspection_id, verdict)
    # and the next run appends to it
    proc = _start(tmp_path, "--source", "synthetic://?fps=0&boards=4", "--max-frames", "3")
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert ResultsDB(db).counts()["total"] == len(rows) + 3


def test_ctrl_c_at_a_terminal_reaches_the_workers_too_and_loses_nothing(tmp_path: Path) -> None:
    """A terminal's Ctrl-C signals the whole process group: workers must leave the stopping to the station."""
    proc = subprocess.Popen([EXE, "run", "--db", str(tmp_path / "r.db"), "--http", "off", "--workers", "2",
                             "--source", "synthetic://?fps=60&boards=4"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True)
    _wait_for_rows(tmp_path / "r.db", 20)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    m = re.search(r"inspected (\d+) .* error (\d+)  dropped", out)
    assert m and int(m.group(2)) == 0, out
    assert ResultsDB(tmp_path / "r.db").counts()["total"] == int(m.group(1))
