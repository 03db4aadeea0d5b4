from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.engine import front_end
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.proposals import ProposalConfig, tolerant_difference
from pcb_inspect.inspect.records import box_iou
from pcb_inspect.inspect.degrade import move_and_degrade, transform_ground_truth
from pcb_inspect.inspect.synthetic import generate_board


def _recall(boxes: list, truth: list) -> float:
    return float(np.mean([any(box_iou(g.box, b) > 0.33 for b in boxes) for g in truth]))


def test_tolerance_ignores_one_pixel_edge_shift_but_keeps_a_small_defect() -> None:
    a = np.zeros((40, 40), np.uint8)
    a[10:30, 10:20] = 1
    b = np.zeros_like(a)
    b[10:30, 11:21] = 1  # the same trace, one pixel over
    assert not tolerant_difference(a, b, 1).any()
    b[18:21, 25:28] = 1  # a 3x3 speck of spurious copper
    d = tolerant_difference(a, b, 1)
    assert (d == -1).sum() == 9 and not (d == 1).any()


@pytest.mark.parametrize("tolerance", [0, 1, 2])
def test_tolerant_difference_matches_its_definition_on_random_masks(tolerance: int) -> None:
    rng = np.random.default_rng(tolerance)
    a = (rng.random((64, 80)) < 0.3).astype(np.uint8)
    b = (rng.random((64, 80)) < 0.3).astype(np.uint8)
    kernel = np.ones((2 * tolerance + 1,) * 2, np.uint8)
    near_b, near_a = cv2.dilate(b, kernel), cv2.dilate(a, kernel)  # pixels with copper of the other within range
    expected = (a & (1 - near_b)).astype(np.int8) - (b & (1 - near_a)).astype(np.int8)
    got = tolerant_difference(a, b, tolerance)
    assert got.dtype == np.int8 and np.array_equal(got, expected) and got.any()


@pytest.mark.parametrize("seed", range(4))
def test_finds_injected_defects_on_clean_and_moved_boards(seed: int) -> None:
    board = generate_board(seed)
    clean = front_end(board.tested, board.template)
    assert _recall(clean.candidates.box_list(), board.ground_truth) == 1.0
    moved = move_and_degrade(board.tested, np.random.default_rng(seed))
    truth = transform_ground_truth(board.ground_truth, moved.matrix, board.tested.shape)
    fe = front_end(moved.image, board.template)
    # boxes come in the tested (moved) image's own coordinates
    assert _recall(fe.candidates.box_list(), truth) >= 0.9


def test_boxes_are_padded_and_clipped() -> None:
    board = generate_board(11)
    fe = front_end(board.tested, board.template, proposals=ProposalConfig(pad_px=11))
    c = fe.candidates
    assert len(c) > 0
    assert (c.boxes[:, :2] >= 0).all() and (c.boxes[:, 2] <= 640).all() and (c.boxes[:, 3] <= 640).all()
    inner = (c.tight[:, 0] >= 11) & (c.tight[:, 2] <= 629)
    assert np.all(c.tight[inner, 0] - c.boxes[inner, 0] == 11)


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match="proposals.pad_px"):
        ProposalConfig(pad_px=-1)


def test_candidate_recall_on_real_deeppcb(deeppcb_root: Path) -> None:
    """The proposal stage must hand the classifier at least 99% of annotated defects (IoU > 0.33)."""
    from pcb_inspect.inspect.deeppcb import read_split

    records = read_split(deeppcb_root, "PCBData/trainval.txt")[::4]
    hits = total = 0
    for rec in records:
        tested, template = rec.load_images()
        boxes = front_end(tested, template).candidates.box_list()
        truth = rec.load_ground_truth()
        hits += sum(any(box_iou(g.box, b) > 0.33 for b in boxes) for g in truth)
        total += len(truth)
    assert hits / total >= 0.99


def _labelled_boxes(mask: np.ndarray) -> list[tuple[int, ...]]:
    import cv2

    stats = cv2.connectedComponentsWithStats(mask, connectivity=8)[2][1:, :4]
    return sorted(map(tuple, stats.tolist()))


@pytest.mark.parametrize("seed", range(5))
def test_contour_components_are_the_labelled_components(seed: int) -> None:
    """Tracing outer contours must find exactly the 8-connected components that labelling every pixel finds,
    including a component inside another one's hole."""
    from pcb_inspect.inspect.proposals import components

    rng = np.random.default_rng(seed)
    mask = (rng.random((120, 160)) < 0.08).astype(np.uint8)
    mask[30:60, 30:60] = 1
    mask[35:55, 35:55] = 0  # a ring ...
    mask[44:46, 44:46] = 1  # ... with a dot in its hole
    rects, contours = components(mask)
    assert sorted(map(tuple, rects.tolist())) == _labelled_boxes(mask)
    assert len(contours) == len(rects)
    # min_area 2 drops exactly the single pixels
    two, _ = components(mask, 2)
    sizes = __import__("cv2").connectedComponentsWithStats(mask, connectivity=8)[2][1:, 4]
    assert len(two) == int((sizes >= 2).sum()) < len(rects)


def test_a_defect_on_a_long_edge_strip_is_split_out() -> None:
    """A 2 px strip along a whole edge (residual misregistration) swallows a defect touching it; the split keeps
    the defect's thick core as its own candidate and drops the thin strip."""
    tested = np.zeros((200, 200), np.uint8)
    template = np.zeros_like(tested)
    template[50:150, 20:100] = 1
    tested[50:150, 20:103] = 1  # the tested trace is 3 px wider: a thin strip of difference along x = 100..102
    tested[95:105, 103:110] = 1  # a spur touching that strip
    config = ProposalConfig(local_search_px=0, border_px=0)
    from pcb_inspect.inspect.proposals import propose

    c = propose(tested, template, config)
    assert len(c) == 1
    x1, y1, x2, y2 = c.tight[0]
    assert (x2, y1, y2) == (110, 92, 108)  # the spur regrown 3 px into the strip, not the 100 px strip
    assert x1 >= 100
