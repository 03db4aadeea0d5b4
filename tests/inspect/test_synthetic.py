"""Synthetic boards must act like DeepPCB pairs with exact ground truth, or tests built on them lie."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.records import DEFECT_CLASSES, class_from_type_id
from pcb_inspect.inspect.synthetic import STYLES, SyntheticBoard, generate_board, write_dataset

SIZE = 640
REMOVES_COPPER = {"open", "mousebite", "pin-hole"}  # copper (0) turns substrate (255); the rest add copper


@pytest.fixture(scope="module")
def boards() -> list[SyntheticBoard]:
    return [generate_board(seed) for seed in range(24)]


def _diff(board: SyntheticBoard) -> np.ndarray:
    return board.tested != board.template


def test_same_seed_gives_same_board() -> None:
    a, b = generate_board(7), generate_board(7)
    assert np.array_equal(a.template, b.template) and np.array_equal(a.tested, b.tested)
    assert a.ground_truth == b.ground_truth and a.seed == b.seed == 7


def test_different_seeds_give_different_boards() -> None:
    a, b = generate_board(7), generate_board(8)
    assert not np.array_equal(a.template, b.template)
    assert not np.array_equal(a.tested, b.tested)


def test_images_are_binary_640(boards: list[SyntheticBoard]) -> None:
    for board in boards:
        for img in (board.template, board.tested):
            assert img.shape == (SIZE, SIZE) and img.dtype == np.uint8
            assert set(np.unique(img).tolist()) == {0, 255}
        copper = (board.template == 0).mean()
        assert 0.05 < copper < 0.95, f"seed {board.seed}: copper fraction {copper:.2f} is not board-like"


def test_three_to_twelve_defects(boards: list[SyntheticBoard]) -> None:
    counts = [len(b.ground_truth) for b in boards]
    assert all(3 <= n <= 12 for n in counts)
    assert len(set(counts)) > 3  # not a constant


def test_boxes_inside_image_and_not_overlapping(boards: list[SyntheticBoard]) -> None:
    for board in boards:
        boxes = [gt.box for gt in board.ground_truth]
        for x1, y1, x2, y2 in boxes:
            assert 0 <= x1 < x2 <= SIZE and 0 <= y1 < y2 <= SIZE
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (board.seed, a, b)


def test_every_box_holds_its_defect_and_nothing_differs_elsewhere(boards: list[SyntheticBoard]) -> None:
    for board in boards:
        diff = _diff(board)
        covered = np.zeros_like(diff)
        for gt in board.ground_truth:
            x1, y1, x2, y2 = gt.box
            inside = diff[y1:y2, x1:x2]
            assert inside.any(), f"seed {board.seed}: {gt} has no differing pixel"
            covered[y1:y2, x1:x2] = True
        assert not (diff & ~covered).any(), f"seed {board.seed}: differing pixels outside every box"


def test_boxes_are_padded_like_deeppcb(boards: list[SyntheticBoard]) -> None:
    """DeepPCB boxes are 10-12 px a side larger than the differing pixels; clipped only at the image edge."""
    for board in boards:
        diff = _diff(board)
        for gt in board.ground_truth:
            x1, y1, x2, y2 = gt.box
            ys, xs = np.nonzero(diff[y1:y2, x1:x2])
            pads = (xs.min(), ys.min(), (x2 - x1) - 1 - xs.max(), (y2 - y1) - 1 - ys.max())
            edges = (x1 == 0, y1 == 0, x2 == SIZE, y2 == SIZE)
            for pad, at_edge in zip(pads, edges):
                assert 10 <= pad <= 12 or (at_edge and pad < 10), (board.seed, gt, pads)


def test_defect_polarity_matches_class(boards: list[SyntheticBoard]) -> None:
    for board in boards:
        for gt in board.ground_truth:
            x1, y1, x2, y2 = gt.box
            t, s = board.template[y1:y2, x1:x2], board.tested[y1:y2, x1:x2]
            changed = t != s
            if gt.cls in REMOVES_COPPER:
                assert (t[changed] == 0).all(), (board.seed, gt)
            else:
                assert (t[changed] == 255).all(), (board.seed, gt)


def test_all_six_classes_appear(boards: list[SyntheticBoard]) -> None:
    seen = {gt.cls for b in boards for gt in b.ground_truth}
    assert seen == set(DEFECT_CLASSES)


@pytest.mark.parametrize("style", STYLES)
def test_each_style_and_size(style: str) -> None:
    board = generate_board(11, size=384, style=style)
    assert board.style == style and board.tested.shape == (384, 384)
    assert 3 <= len(board.ground_truth) <= 12


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="size"):
        generate_board(0, size=32)
    with pytest.raises(ValueError, match="style"):
        generate_board(0, style="flex")


def _read_list(path: Path) -> list[tuple[str, str]]:
    text = path.read_text()
    return [tuple(line.split()) for line in text.splitlines() if line.strip()]  # type: ignore[misc]


def test_write_dataset_matches_deeppcb_layout(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "synth", n_boards=6, seed=3, group_size=3)
    assert root == tmp_path / "synth"
    pcb = root / "PCBData"
    trainval, test = _read_list(pcb / "trainval.txt"), _read_list(pcb / "test.txt")
    assert len(trainval) == 3 and len(test) == 3
    assert not (pcb / "trainval.txt").read_text().endswith("\n")  # as DeepPCB's own list
    groups = {split: {img.split("/")[0] for img, _ in pairs}
              for split, pairs in (("tv", trainval), ("te", test))}
    assert len(groups["tv"]) == len(groups["te"]) == 1 and groups["tv"].isdisjoint(groups["te"])
    on_disk = {p.name for p in pcb.iterdir()}
    assert on_disk == {"trainval.txt", "test.txt"} | groups["tv"] | groups["te"]
    for img, ann in trainval + test:
        m = re.fullmatch(r"group(\d{5})/(\d{5})/(\d{8})\.jpg", img)
        assert m and m.group(1) == m.group(2) and m.group(3).startswith(m.group(1)), img
        g, name = m.group(1), m.group(3)
        assert ann == f"group{g}/{g}_not/{name}.txt"
        assert not (pcb / img).exists()  # the list names NNNNNNNN.jpg; disk holds _test and _temp
        tested = cv2.imread(str(pcb / img.replace(".jpg", "_test.jpg")), cv2.IMREAD_GRAYSCALE)
        template = cv2.imread(str(pcb / img.replace(".jpg", "_temp.jpg")), cv2.IMREAD_GRAYSCALE)
        assert tested.shape == template.shape == (SIZE, SIZE)
        rows = [line.split(" ") for line in (pcb / ann).read_text().splitlines()]
        assert 3 <= len(rows) <= 12
        diff = (tested > 127) != (template > 127)  # JPEG q95 keeps the binary picture
        covered = np.zeros_like(diff)
        for row in rows:
            x1, y1, x2, y2, t = (int(v) for v in row)
            assert class_from_type_id(t) in DEFECT_CLASSES
            assert 0 <= x1 < x2 <= SIZE and 0 <= y1 < y2 <= SIZE
            assert diff[y1:y2, x1:x2].any()
            covered[y1:y2, x1:x2] = True
        assert not (diff & ~covered).any()
    again = write_dataset(tmp_path / "again", n_boards=6, seed=3, group_size=3) / "PCBData"
    for _, ann in trainval + test:
        assert (again / ann).read_text() == (pcb / ann).read_text()


def test_write_dataset_single_group_and_bad_args(tmp_path: Path) -> None:
    pcb = write_dataset(tmp_path, n_boards=2, group_size=5) / "PCBData"
    assert len(_read_list(pcb / "trainval.txt")) == 2 and _read_list(pcb / "test.txt") == []
    for kwargs in ({"n_boards": 0}, {"n_boards": 2, "group_size": 1001}, {"n_boards": 2, "test_groups": -1}):
        with pytest.raises(ValueError):
            write_dataset(tmp_path / "bad", **kwargs)
