"""Hand-worked cases that pin the DeepPCB protocol numbers (IoU > 0.33, same class, one-to-one)."""

from __future__ import annotations

import json
import math

import pytest

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import DEFECT_CLASSES, Defect, GroundTruth, box_iou
from pcb_inspect.inspect.metrics import (
    BoardEval,
    average_precision,
    evaluate,
    format_per_class_table,
    match_board,
    mean_iou_of_matches,
)
from pcb_inspect.training.plots import plot_confusion_matrix, plot_pr_curves

BOX = (0, 0, 10, 10)
FAR = (200, 200, 210, 210)
SHORT_BOX = (100, 100, 120, 120)
MISSED_COL = len(DEFECT_CLASSES)
NO_DEFECT_ROW = len(DEFECT_CLASSES)


def cell(report, gt_cls: str, pred_cls: str) -> int:
    rows, cols = report.confusion_labels["rows"], report.confusion_labels["columns"]
    return report.confusion[rows.index(gt_cls)][cols.index(pred_cls)]


@pytest.fixture
def two_gt_three_pred() -> list[BoardEval]:
    """open found (0.9), a short in empty copper (0.8, FP), the real short found late (0.6)."""
    return [
        BoardEval(
            "b1",
            [GroundTruth("open", BOX), GroundTruth("short", SHORT_BOX)],
            [Defect("open", 0.9, BOX), Defect("short", 0.8, FAR), Defect("short", 0.6, SHORT_BOX)],
        )
    ]


def test_hand_computed_precision_recall_f_and_ap(two_gt_three_pred):
    r = evaluate(two_gt_three_pred, score_threshold=0.5)
    assert (r.n_gt, r.tp, r.fp, r.fn) == (2, 2, 1, 0)
    assert r.precision == pytest.approx(2 / 3)
    assert r.recall == pytest.approx(1.0)
    assert r.f_score == pytest.approx(0.8)  # 2 * (2/3) * 1 / (2/3 + 1)
    # pooled ranking TP, FP, TP: (1/1 + 2/3) / 2 GT
    assert r.ap == pytest.approx(5 / 6)
    # open: AP 1; short: FP then TP -> precision 1/2 at its only TP -> AP 0.5
    assert r.per_class["open"] == pytest.approx(
        {"gt": 1, "tp": 1, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f_score": 1.0, "ap": 1.0}
    )
    assert r.per_class["short"] == pytest.approx(
        {"gt": 1, "tp": 1, "fp": 1, "fn": 0, "precision": 0.5, "recall": 1.0, "f_score": 2 / 3, "ap": 0.5}
    )
    assert r.mean_ap == pytest.approx(0.75)
    for cls in ("mousebite", "spur", "copper", "pin-hole"):
        assert r.per_class[cls]["ap"] is None  # no GT: left out of mAP
    assert r.mean_matched_iou == pytest.approx(1.0)


def test_score_threshold_moves_p_r_but_not_ap(two_gt_three_pred):
    low = evaluate(two_gt_three_pred, score_threshold=0.5)
    high = evaluate(two_gt_three_pred, score_threshold=0.7)  # drops the late true short
    assert (high.tp, high.fp, high.fn) == (1, 1, 1)
    assert high.precision == pytest.approx(0.5)
    assert high.recall == pytest.approx(0.5)
    assert high.f_score == pytest.approx(0.5)
    assert high.ap == low.ap == pytest.approx(5 / 6)
    assert high.mean_ap == low.mean_ap
    assert evaluate(two_gt_three_pred, score_threshold=0.6).tp == 2  # the threshold is inclusive


def test_iou_exactly_threshold_is_not_a_match_slightly_above_is():
    gt = [GroundTruth("spur", (0, 0, 100, 100))]
    at = Defect("spur", 0.9, (0, 0, 100, 33))
    above = Defect("spur", 0.9, (0, 0, 100, 34))
    assert box_iou(at.box, gt[0].box) == 0.33
    assert box_iou(above.box, gt[0].box) == pytest.approx(0.34)
    assert match_board(gt, [at]) == [None]
    assert match_board(gt, [above]) == [0]
    assert evaluate([BoardEval("x", gt, [at])]).tp == 0
    assert evaluate([BoardEval("x", gt, [above])]).tp == 1


def test_right_box_wrong_class_is_fp_and_fn_and_a_confusion():
    boards = [BoardEval("b", [GroundTruth("open", BOX)], [Defect("short", 0.9, BOX)])]
    assert match_board(boards[0].ground_truth, boards[0].predictions) == [None]
    assert match_board(boards[0].ground_truth, boards[0].predictions, class_aware=False) == [0]
    r = evaluate(boards)
    assert (r.tp, r.fp, r.fn) == (0, 1, 1)
    assert r.per_class["open"]["fn"] == 1 and r.per_class["short"]["fp"] == 1
    assert cell(r, "open", "short") == 1
    assert sum(map(sum, r.confusion)) == 1  # neither "no-defect" nor "missed": one localised confusion
    assert r.escapes == 0  # the board was flagged, just with the wrong class


def test_two_predictions_on_one_gt_give_one_tp_one_fp():
    gt = [GroundTruth("mousebite", BOX)]
    preds = [Defect("mousebite", 0.7, BOX), Defect("mousebite", 0.9, BOX)]
    assert match_board(gt, preds) == [None, 0]  # the more confident one wins, whatever the list order
    r = evaluate([BoardEval("b", gt, preds)])
    assert (r.tp, r.fp, r.fn) == (1, 1, 0)
    assert r.precision == pytest.approx(0.5) and r.recall == pytest.approx(1.0)
    assert cell(r, "mousebite", "mousebite") == 1
    assert cell(r, "no-defect", "mousebite") == 1
    assert r.ap == pytest.approx(1.0)  # the duplicate ranks after the only TP


def test_prediction_takes_the_highest_iou_unmatched_gt():
    gt = [GroundTruth("copper", (0, 0, 10, 10)), GroundTruth("copper", (5, 0, 15, 10))]
    preds = [Defect("copper", 0.9, (4, 0, 14, 10)), Defect("copper", 0.8, (0, 0, 10, 10))]
    assert match_board(gt, preds) == [1, 0]


def test_escapes_and_false_calls_are_counted_per_board():
    boards = [
        BoardEval("escaped", [GroundTruth("open", BOX)], [Defect("open", 0.2, BOX)]),
        BoardEval("caught", [GroundTruth("open", BOX)], [Defect("open", 0.9, BOX)]),
        BoardEval("false-call", [], [Defect("spur", 0.95, BOX)]),
        BoardEval("clean", [], []),
    ]
    r = evaluate(boards, score_threshold=0.5)
    assert (r.boards, r.defective_boards) == (4, 2)
    assert (r.escapes, r.escape_ids) == (1, ["escaped"])
    assert (r.false_call_boards, r.false_call_ids) == (1, ["false-call"])
    assert evaluate(boards, score_threshold=0.1).escapes == 0
    # AP uses every prediction: ranks 0.95 FP, 0.9 TP, 0.2 TP over 2 GT -> (1/2 + 2/3) / 2
    assert r.ap == pytest.approx(7 / 12)


def test_confusion_invariants_on_a_mixed_board():
    hole = (50, 50, 60, 60)
    gt = [GroundTruth("open", BOX), GroundTruth("short", SHORT_BOX), GroundTruth("pin-hole", hole)]
    preds = [
        Defect("open", 0.9, BOX),  # TP
        Defect("spur", 0.8, SHORT_BOX),  # short called spur
        Defect("copper", 0.7, FAR),  # nothing there
        Defect("open", 0.1, hole),  # below threshold: ignored by the matrix
    ]
    r = evaluate([BoardEval("m", gt, preds)])
    assert r.confusion_labels["rows"][-1] == "no-defect" and r.confusion_labels["columns"][-1] == "missed"
    assert len(r.confusion) == 7 and all(len(row) == 7 for row in r.confusion)
    assert cell(r, "open", "open") == 1
    assert cell(r, "short", "spur") == 1
    assert cell(r, "no-defect", "copper") == 1
    assert cell(r, "pin-hole", "missed") == 1
    for k, cls in enumerate(DEFECT_CLASSES):
        assert r.confusion[k][k] == r.per_class[cls]["tp"]
        assert sum(r.confusion[k]) == r.per_class[cls]["gt"]
        assert sum(row[k] for row in r.confusion) == r.per_class[cls]["tp"] + r.per_class[cls]["fp"]
    assert r.confusion[NO_DEFECT_ROW][MISSED_COL] == 0


def test_deeppcb_ap_is_not_interpolated_voc_is():
    ranked = [(0.9, True), (0.8, False), (0.7, False), (0.6, True), (0.5, True)]
    assert average_precision(ranked, 3) == pytest.approx((1 + 2 / 4 + 3 / 5) / 3)  # 0.7
    assert average_precision(ranked, 3, method="voc") == pytest.approx((1 + 0.6 + 0.6) / 3)
    assert average_precision(ranked, 0) is None
    assert average_precision([], 4) == 0.0


def test_mean_iou_of_matches():
    boards = [
        BoardEval("a", [GroundTruth("open", BOX)], [Defect("open", 0.9, (0, 0, 10, 5))]),  # IoU 0.5
        BoardEval("b", [GroundTruth("spur", BOX)], [Defect("spur", 0.9, BOX)]),  # IoU 1
        BoardEval("c", [GroundTruth("spur", BOX)], [Defect("spur", 0.3, BOX)]),  # below threshold
    ]
    assert mean_iou_of_matches(boards, score_threshold=0.5) == pytest.approx(0.75)
    assert evaluate(boards).mean_matched_iou == pytest.approx(0.75)
    assert mean_iou_of_matches(boards[:1], score_threshold=0.95) is None


def test_no_predictions_and_no_ground_truth_stay_finite_and_json_clean():
    missed_all = evaluate([BoardEval("a", [GroundTruth("open", BOX)], [])])
    assert (missed_all.precision, missed_all.recall, missed_all.f_score) == (0.0, 0.0, 0.0)
    assert missed_all.ap == 0.0 and missed_all.mean_ap == 0.0 and missed_all.escapes == 1
    only_fp = evaluate([BoardEval("a", [], [Defect("open", 0.9, BOX)])])
    assert only_fp.ap is None and only_fp.mean_ap is None and only_fp.recall == 0.0
    empty = evaluate([])
    assert empty.boards == 0 and empty.ap is None
    for r in (missed_all, only_fp, empty):
        text = json.dumps(r.to_dict(include_pr=True), allow_nan=False)
        assert "NaN" not in text


def test_to_dict_keys_and_pr_kept_apart(two_gt_three_pred):
    r = evaluate(two_gt_three_pred)
    d = r.to_dict()
    for key in ("precision", "recall", "f_score", "ap", "mean_ap", "per_class", "boards", "escapes",
                "escape_ids", "confusion", "confusion_labels", "mean_matched_iou"):
        assert key in d
    assert "pr" not in d and "pr_curve" not in d
    pr = r.to_dict(include_pr=True)["pr"]
    assert pr["pooled"]["recall"] == pytest.approx([0.5, 0.5, 1.0])
    assert pr["pooled"]["precision"] == pytest.approx([1.0, 0.5, 2 / 3])
    assert set(pr) == {"pooled", "open", "short"}
    json.loads(json.dumps(d, allow_nan=False))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"score_threshold": 1.5}, "score_threshold"),
        ({"score_threshold": -0.1}, "score_threshold"),
        ({"iou_threshold": 1.01}, "iou_threshold"),
        ({"iou_threshold": math.nan}, "iou_threshold"),
        ({"ap_method": "coco"}, "ap_method"),
    ],
)
def test_bad_thresholds_are_rejected_by_name(kwargs, field):
    with pytest.raises(ValueError, match=field):
        evaluate([], **kwargs)


def test_match_board_rejects_bad_iou_and_board_rejects_wrong_records():
    with pytest.raises(ValueError, match="iou_threshold"):
        match_board([], [], iou_threshold=2.0)
    with pytest.raises(ConfigError, match="score_threshold"):  # the CLI's one-line error family too
        evaluate([], score_threshold=True)
    with pytest.raises(TypeError, match="predictions"):
        BoardEval("x", [], [GroundTruth("open", BOX)])
    with pytest.raises(TypeError, match="ground_truth"):
        BoardEval("x", [Defect("open", 0.5, BOX)], [])


def test_voc_ap_method_through_evaluate():
    gt = [GroundTruth("open", (0, 0, 10, 10)), GroundTruth("open", (20, 0, 30, 10)),
          GroundTruth("open", (40, 0, 50, 10))]
    preds = [Defect("open", 0.9, (0, 0, 10, 10)), Defect("open", 0.8, FAR), Defect("open", 0.7, SHORT_BOX),
             Defect("open", 0.6, (20, 0, 30, 10)), Defect("open", 0.5, (40, 0, 50, 10))]
    board = [BoardEval("v", gt, preds)]
    assert evaluate(board).ap == pytest.approx(0.7)
    assert evaluate(board, ap_method="voc").ap == pytest.approx(2.2 / 3)
    assert evaluate(board, ap_method="voc").per_class["open"]["ap"] == pytest.approx(2.2 / 3)


def test_equal_confidence_ties_rank_in_input_order():
    gt = [GroundTruth("open", BOX)]
    hit, miss = Defect("open", 0.5, BOX), Defect("open", 0.5, FAR)
    tp_first = [BoardEval("a", gt, [hit]), BoardEval("b", [], [miss])]
    assert evaluate(tp_first).ap == pytest.approx(1.0)
    assert evaluate(tp_first[::-1]).ap == pytest.approx(0.5)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_per_class_table(two_gt_three_pred):
    table = format_per_class_table(evaluate(two_gt_three_pred))
    lines = table.splitlines()
    assert _cells(lines[0]) == ["class", "GT", "TP", "FP", "FN", "P", "R", "F", "AP"]
    assert _cells(lines[1])[0].endswith("-") and all(c.endswith(":") for c in _cells(lines[1])[1:])
    rows = {_cells(ln)[0]: _cells(ln) for ln in lines[2:9]}
    assert set(rows) == {*DEFECT_CLASSES, "all"}
    assert rows["short"] == ["short", "1", "1", "1", "0", "0.500", "1.000", "0.667", "0.500"]
    assert rows["spur"][-1] == "-"
    assert rows["all"] == ["all", "2", "2", "1", "0", "0.667", "1.000", "0.800", "0.833"]
    assert "mAP" in table and "0.750" in table


def test_plots_write_png_files(tmp_path, two_gt_three_pred):
    r = evaluate(two_gt_three_pred)
    outputs = (plot_confusion_matrix(r, tmp_path / "cm.png"), plot_pr_curves(r, tmp_path / "sub" / "pr.png"))
    for out in outputs:
        assert out.exists() and out.stat().st_size > 1000
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = evaluate([])
    assert plot_pr_curves(empty, tmp_path / "empty_pr.png").stat().st_size > 0
    assert plot_confusion_matrix(empty, tmp_path / "empty_cm.png").stat().st_size > 0
