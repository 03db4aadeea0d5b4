"""The feedback tables: a schema step on top of an existing results database, written and read back."""

from __future__ import annotations

import sqlite3

from pcb_inspect.inspect.records import Defect, Inspection, Verdict
from pcb_inspect.inspect.sinks.sqlite import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ResultsDB,
    read_feedback,
    write_feedback,
)


def test_a_version_1_database_gains_the_feedback_tables_and_keeps_its_inspections(tmp_path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in MIGRATIONS[0]:  # a station's file from before feedback existed
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    i = Inspection(board_id="b1", verdict=Verdict.FAIL, defects=[Defect("spur", 0.9, (1, 2, 9, 9))], time=1.0)
    conn.execute("INSERT INTO inspections VALUES "
                 "(?, 1.0, '', '', 0, 'b1', 'FAIL', '', 0, '{}', '{}', 0, '', 1)", (i.id,))
    conn.execute("INSERT INTO defects VALUES (?, 1, 0, 'spur', 0.9, 1, 2, 9, 9)", (i.id,))
    conn.close()
    assert read_feedback(db) == [] and read_feedback(db, i.id) == []  # no table yet: no feedback
    row = {"inspection_id": i.id, "board_id": "b1", "operator": "Li", "time": 5.0, "note": "", "images": 0,
           "width": 0, "height": 0, "items": [
               {"judgement": "false_call", "defect_seq": 0, "model_cls": "spur", "confidence": 0.9,
                "cls": "spur", "box": [1, 2, 9, 9]},
               {"judgement": "added", "cls": "short", "box": [20, 20, 30, 30]}]}
    first = write_feedback(db, row)
    second = write_feedback(db, {**row, "time": 6.0, "operator": "Wang"})
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    kept = ResultsDB(db).get(i.id).to_dict()["defects"]
    assert kept == [{"cls": "spur", "confidence": 0.9, "box": [1, 2, 9, 9]}]
    history = read_feedback(db, i.id)
    assert [(f["id"], f["operator"]) for f in history] == [(first, "Li"), (second, "Wang")]
    assert history[0]["items"][1] == {"judgement": "added", "defect_seq": None, "model_cls": None,
                                      "confidence": None, "cls": "short", "box": [20, 20, 30, 30]}
    assert [f["operator"] for f in read_feedback(db)] == ["Wang"]  # the newest per board, for export
