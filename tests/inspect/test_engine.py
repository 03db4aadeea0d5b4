from __future__ import annotations

import numpy as np
import pytest

from pcb_inspect.inspect.engine import scores_to_detections, suppress_duplicates
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import Defect, Verdict
from pcb_inspect.inspect.verdict import VerdictPolicy


def _probs(rows: list[tuple[int, float]]) -> np.ndarray:
    """One row per candidate: (defect class index, P(that class)); the rest is no-defect."""
    p = np.zeros((len(rows), 7), np.float32)
    for i, (cls, v) in enumerate(rows):
        p[i, cls] = v
        p[i, 6] = 1 - v
    return p


def test_duplicates_of_one_defect_become_one_report() -> None:
    boxes = np.array([[10, 10, 50, 50], [12, 12, 52, 52], [200, 200, 230, 230]])
    dets = scores_to_detections(boxes, _probs([(0, 0.8), (0, 0.9), (5, 0.7)]), nms_iou=0.2)
    assert [(d.cls, round(d.confidence, 2), d.box) for d in dets] == [
        ("open", 0.9, (12, 12, 52, 52)),
        ("pin-hole", 0.7, (200, 200, 230, 230)),
    ]


def test_confidence_is_one_minus_no_defect() -> None:
    p = np.array([[0.3, 0.3, 0, 0, 0, 0, 0.4]], np.float32)
    (d,) = scores_to_detections(np.array([[0, 0, 10, 10]]), p, 0.2)
    assert d.confidence == pytest.approx(0.6) and d.cls == "open"


def test_wrong_output_shape_is_an_error() -> None:
    with pytest.raises(ConfigError, match="classifier returned shape"):
        scores_to_detections(np.array([[0, 0, 10, 10]]), np.zeros((1, 5)), 0.2)


def test_suppression_keeps_disjoint_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    assert sorted(suppress_duplicates(boxes, np.array([0.5, 0.6]), 0.2)) == [0, 1]


@pytest.mark.parametrize(
    ("scores", "verdict"),
    [([], Verdict.PASS), ([0.2], Verdict.PASS), ([0.4], Verdict.REVIEW), ([0.4, 0.55], Verdict.FAIL)],
)
def test_verdict_policy(scores: list[float], verdict: Verdict) -> None:
    policy = VerdictPolicy(score_threshold=0.5, review_band=0.15)
    dets = [Defect("short", s, (0, 0, 5, 5)) for s in scores]
    assert policy.judge(dets) is verdict
    assert len(policy.reported(dets)) == sum(s >= 0.5 for s in scores)


def test_per_class_threshold_and_bad_policy() -> None:
    policy = VerdictPolicy(per_class={"spur": 0.9})
    assert policy.judge([Defect("spur", 0.8, (0, 0, 5, 5))]) is Verdict.REVIEW
    with pytest.raises(ConfigError, match="review_band"):
        VerdictPolicy(score_threshold=0.5, review_band=0.6)
    with pytest.raises(ConfigError, match="threshold for 'solder'"):
        VerdictPolicy(per_class={"solder": 0.5})


def test_inspect_gives_a_record_with_verdict_and_stage_times(shipped_model) -> None:  # noqa: ANN001
    from pcb_inspect.inspect.backends import OnnxRuntimeBackend
    from pcb_inspect.inspect.engine import Inspector
    from pcb_inspect.inspect.synthetic import generate_board

    inspector = Inspector(OnnxRuntimeBackend(shipped_model))
    board = generate_board(21)
    result = inspector.inspect(board.tested, board.template, board_id="b21")
    assert result.verdict in (Verdict.FAIL, Verdict.REVIEW)
    assert result.defects and all(d.confidence >= 0.5 for d in result.defects)
    assert {"register", "propose", "crop", "classify"} <= set(result.stage_ms)
    assert result.to_dict()["verdict"] == str(result.verdict)
    clean = inspector.inspect(board.template, board.template, board_id="clean")
    assert clean.verdict is Verdict.PASS and not clean.defects


@pytest.mark.parametrize(
    ("tested", "template", "message"),
    [
        (np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8), "tested image: need a 2-D uint8"),
        (np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.float32), "template: need a 2-D uint8"),
        (np.zeros((64, 64), np.uint8), np.zeros((64, 60), np.uint8), "differ in size"),
    ],
)
def test_bad_frames_are_refused_with_one_line(tested, template, message: str) -> None:  # noqa: ANN001
    from pcb_inspect.inspect.engine import front_end
    from pcb_inspect.inspect.errors import ImageError

    with pytest.raises(ImageError, match=message):
        front_end(tested, template)


def test_bad_boards_become_error_inspections_not_exceptions(shipped_model) -> None:  # noqa: ANN001
    from pcb_inspect.inspect.backends import OnnxRuntimeBackend
    from pcb_inspect.inspect.engine import Inspector
    from pcb_inspect.inspect.errors import ImageError
    from pcb_inspect.inspect.synthetic import generate_board

    inspector = Inspector(OnnxRuntimeBackend(shipped_model))
    a, b = generate_board(3), generate_board(9)
    wrong = inspector.inspect(a.template, b.template, board_id="wrong-template", frame_index=4)
    assert wrong.verdict is Verdict.ERROR and not wrong.defects
    assert "differs from its template over" in wrong.error and wrong.frame_index == 4
    assert wrong.model_sha256 == inspector.backend.model_sha256 and wrong.candidates > 0
    size = inspector.inspect(a.template, a.template[:, :600], board_id="size")
    assert size.verdict is Verdict.ERROR and "differ in size" in size.error

    def unreadable() -> tuple:
        raise ImageError("x.jpg: JPEG is corrupt (bad Huffman code)")

    broken = inspector.inspect_loaded(unreadable, board_id="broken", source="dir://boards")
    assert broken.verdict is Verdict.ERROR and broken.error.startswith("x.jpg: JPEG is corrupt")
    assert broken.source == "dir://boards"
    good = inspector.inspect_loaded(lambda: (a.tested, a.template), board_id="good")
    assert good.verdict is Verdict.FAIL and "decode" in good.stage_ms and good.registration["ok"] == 1.0
    assert all(d.confidence < inspector.policy.threshold(d.cls) for d in good.below_threshold)


def test_inspection_record_refuses_lies() -> None:
    from pcb_inspect.inspect.records import Inspection

    defect = Defect("short", 0.9, (0, 0, 5, 5))
    with pytest.raises(ConfigError, match="PASS with 1 reported defect"):
        Inspection("b", "PASS", [defect])
    with pytest.raises(ConfigError, match="FAIL without a reported defect"):
        Inspection("b", "FAIL")
    with pytest.raises(ConfigError, match="ERROR verdict needs its reason"):
        Inspection("b", "ERROR")
    with pytest.raises(ConfigError, match="latency_ms"):
        Inspection("b", "PASS", latency_ms=float("nan"))
    with pytest.raises(ConfigError, match="frame_index"):
        Inspection("b", "PASS", frame_index=-1)
    with pytest.raises(ConfigError, match="model_sha256"):
        Inspection("b", "PASS", model_sha256="abc")
    ok = Inspection("b", "FAIL", [defect], stage_ms={"register": 2.0})
    back = Inspection.from_dict(ok.to_dict())
    assert back == ok
    with pytest.raises(ConfigError, match="unknown fields"):
        Inspection.from_dict({**ok.to_dict(), "surprise": 1})
