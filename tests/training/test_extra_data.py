"""Closing the loop: a false call marked on the operator page (through its API, with the token) becomes a
"no defect" example in the next training set, via `feedback export` and `train --extra-data`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

pytest.importorskip("torch", reason="training needs the [train] extra (torch)")

from pcb_inspect.inspect import dashboard  # noqa: E402
from pcb_inspect.inspect.errors import ConfigError  # noqa: E402
from pcb_inspect.inspect.feedback_export import export_feedback  # noqa: E402
from pcb_inspect.inspect.records import CLASSIFIER_CLASSES, Defect, Inspection, Verdict, box_iou  # noqa: E402
from pcb_inspect.inspect.server import create_app  # noqa: E402
from pcb_inspect.inspect.sinks.base import Result  # noqa: E402
from pcb_inspect.inspect.sinks.sqlite import SQLiteSink  # noqa: E402
from pcb_inspect.inspect.stats import LineStats  # noqa: E402
from pcb_inspect.inspect.synthetic import generate_board  # noqa: E402
from pcb_inspect.training.candidates import (  # noqa: E402
    NO_DEFECT_INDEX,
    build_board_candidates,
    build_crop_set,
    label_candidates,
)
from pcb_inspect.training.train import TrainConfig, _extra_key, training_records  # noqa: E402

TOKEN = "feedback-loop-token"


class Runtime:
    def __init__(self, sinks: list) -> None:
        self.sinks, self.stats = sinks, LineStats()

    def status(self) -> dict:
        return {"station": "line-1", "inspected": 0}

    def health(self) -> tuple[bool, str]:
        return True, "ok"


def _isolated_board():  # noqa: ANN202
    """A 640-pixel synthetic board with a defect far from the others (its candidate labelled by it only)."""
    for seed in range(40):
        board = generate_board(seed, 640)
        gt = board.ground_truth
        for k, g in enumerate(gt):
            grown = (g.box[0] - 40, g.box[1] - 40, g.box[2] + 40, g.box[3] + 40)
            if len(gt) >= 3 and all(box_iou(grown, o.box) == 0 for j, o in enumerate(gt) if j != k):
                return board, k
    raise AssertionError("no synthetic board with an isolated defect")


def _labels_at(record, box) -> list[int]:  # noqa: ANN001
    """The training labels of the record's candidates that match ``box`` (IoU > 0.33, as training matches)."""
    cands = build_board_candidates([record], workers=1, desc="test")[0]
    labels = label_candidates(cands.boxes, cands.boxes, record.load_ground_truth())
    return [int(lab) for b, lab in zip(cands.boxes, labels) if box_iou(tuple(int(v) for v in b), box) > 0.33]


def test_a_false_call_marked_on_the_page_is_a_no_defect_example_in_the_next_training_set(
        tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCB_INSPECT_TOKEN", TOKEN)
    args = argparse.Namespace(http="127.0.0.1:8080", token_file=None, feed_images="rejects",
                              shift_starts="06:00")
    db = tmp_path / "line.db"
    sinks = [SQLiteSink(db), *dashboard.make_sinks(args)]
    for sink in sinks:
        sink.start()
    runtime = Runtime(sinks)
    app = create_app(runtime)
    dashboard.mount(app, runtime, args)
    client = TestClient(app, client=("127.0.0.1", 40000))

    board, k = _isolated_board()
    defects = [Defect(g.cls, 0.95, g.box) for g in board.ground_truth]
    inspection = Inspection(board_id="syn-1", verdict=Verdict.FAIL, defects=defects, time=time.time())
    for sink in sinks:
        sink.submit(Result(inspection, image=board.tested, template=board.template))
    for sink in sinks:
        assert sink.flush(10.0)
    false_call = defects[k]

    def judge(kind_of_k: str) -> None:
        judgements = [{"ref": j, "judgement": kind_of_k if j == k else "confirmed"}
                      for j in range(len(defects))]
        body = {"operator": "Chen", "judgements": judgements}
        url = f"/api/inspections/{inspection.id}/feedback"
        assert client.post(url, json=body).status_code == 401  # no token, no feedback
        r = client.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 201, r.text

    try:
        judge("confirmed")  # the operator first agrees with the model ...
        before = export_feedback(db, tmp_path / "before").out
        judge("false_call")  # ... then, on a second look, calls this defect a false call
        after = export_feedback(db, tmp_path / "after").out
    finally:
        for sink in sinks:
            sink.close(5.0)

    def training_set(extra: Path):  # noqa: ANN202
        cfg = TrainConfig(data=synthetic_root, out=tmp_path / "run", extra_data=[extra], workers=1)
        train, val, added = training_records(cfg)
        assert len(added) == 1 and added[0] in train and added[0] not in val  # training only, never held out
        assert "groupfeedback" not in {r.group for r in val}
        return added[0]

    old, new = training_set(before), training_set(after)
    assert false_call.box in [g.box for g in old.load_ground_truth()]
    assert false_call.box not in [g.box for g in new.load_ground_truth()]  # gone from the defect labels
    assert len(new.load_ground_truth()) == len(defects) - 1
    cls_index = CLASSIFIER_CLASSES.index(false_call.cls)
    assert cls_index in _labels_at(old, false_call.box)
    labels = _labels_at(new, false_call.box)
    assert labels and set(labels) == {NO_DEFECT_INDEX}  # the same candidate is now a "no defect" example
    counts_old = build_crop_set([old], ("clean",), workers=1, desc="test").class_counts()
    counts_new = build_crop_set([new], ("clean",), workers=1, desc="test").class_counts()
    assert counts_new["no-defect"] > counts_old["no-defect"]
    assert counts_new[false_call.cls] < counts_old[false_call.cls]
    assert _extra_key([old]) != _extra_key([new])  # another training set: another crop cache, not a stale one


def test_extra_data_must_be_a_deeppcb_layout_folder(tmp_path: Path, synthetic_root: Path) -> None:
    with pytest.raises(ConfigError, match="--extra-data .*PCBData/trainval.txt"):
        TrainConfig(data=synthetic_root, out=tmp_path / "run", extra_data=[tmp_path])
    cfg = TrainConfig(data=synthetic_root, out=tmp_path / "run")
    train, val, added = training_records(cfg)
    assert added == [] and train and val
    assert np.isin([r.group for r in val], [r.group for r in train]).sum() == 0
