from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.errors import DataError
from pcb_inspect.inspect.deeppcb import read_annotations, read_split, split_by_group


def _pair(root: Path, group: str, board: str, ann: str) -> str:
    img_dir = root / "PCBData" / f"group{group}" / group
    ann_dir = root / "PCBData" / f"group{group}" / f"{group}_not"
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    for kind in ("test", "temp"):
        cv2.imwrite(str(img_dir / f"{board}_{kind}.jpg"), np.full((64, 64), 255, np.uint8))
    (ann_dir / f"{board}.txt").write_text(ann)
    return f"group{group}/{group}/{board}.jpg group{group}/{group}_not/{board}.txt"


def _dataset(root: Path, lines: list[str]) -> Path:
    (root / "PCBData").mkdir(parents=True, exist_ok=True)
    (root / "PCBData" / "list.txt").write_text("\n".join(lines))  # no trailing newline, like DeepPCB
    return root


def test_reads_spaces_and_commas(tmp_path: Path) -> None:
    lines = [_pair(tmp_path, "1000", "10000001", "1 2 30 40 1\n"), _pair(tmp_path, "1000", "10000002", "5,6,20,30,6\n\n")]
    records = read_split(_dataset(tmp_path, lines), "PCBData/list.txt")
    assert [r.board_id for r in records] == ["10000001", "10000002"]
    assert records[0].load_ground_truth()[0].cls == "open"
    gt = records[1].load_ground_truth()
    assert gt[0].cls == "pin-hole" and gt[0].box == (5, 6, 20, 30)
    tested, template = records[0].load_images()
    assert tested.shape == template.shape == (64, 64)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2 30 40\n", r"a\.txt:1: expected 'x1 y1 x2 y2 type'"),
        ("1 2 30 40 1\n1 2 30 40 9\n", r"a\.txt:2: defect type 9"),
        ("1 2 3 4 x\n", r"a\.txt:1: "),
        ("30 2 10 40 1\n", r"a\.txt:1: .*empty"),
    ],
)
def test_bad_annotation_line_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "a.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_annotations(path)


def test_missing_template_names_list_line_and_file(tmp_path: Path) -> None:
    line = _pair(tmp_path, "2000", "20000001", "1 2 30 40 1")
    (tmp_path / "PCBData/group2000/2000/20000001_temp.jpg").unlink()
    _dataset(tmp_path, [line])
    with pytest.raises(DataError, match=r"list\.txt:1: template image .*20000001_temp\.jpg not found"):
        read_split(tmp_path, "PCBData/list.txt")


def test_missing_split_and_malformed_list(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="split list not found"):
        read_split(tmp_path, "PCBData/test.txt")
    _dataset(tmp_path, ["just-one-field"])
    with pytest.raises(DataError, match=r"list\.txt:1: expected"):
        read_split(tmp_path, "PCBData/list.txt")


def test_group_split_is_whole_groups_and_seeded(synthetic_root: Path) -> None:
    records = read_split(synthetic_root, "PCBData/trainval.txt")
    train, val = split_by_group(records, 0.3, seed=1)
    assert {r.group for r in train}.isdisjoint({r.group for r in val})
    assert len(train) + len(val) == len(records) and val
    again = split_by_group(records, 0.3, seed=1)
    assert [r.board_id for r in again[1]] == [r.board_id for r in val]
    with pytest.raises(DataError, match="not in the data"):
        split_by_group(records, val_groups=["group-nope"])


def test_real_deeppcb_reads_completely(deeppcb_root: Path) -> None:
    records = read_split(deeppcb_root, "PCBData/trainval.txt")
    assert len(records) == 1000
    counts = [len(r.load_ground_truth()) for r in records]
    assert sum(counts) == 6873  # measured: 1 to 15 defects a board (the dataset paper says 3 to 12)
    assert min(counts) >= 1 and max(counts) <= 15
