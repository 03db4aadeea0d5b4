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


def test_scan_keeps_good_lines_and_names_each_bad_one(tmp_path: Path) -> None:
    from pcb_inspect.inspect.deeppcb import scan_split

    good = _pair(tmp_path, "3000", "30000001", "1 2 30 40 1\n")
    bad_ann = _pair(tmp_path, "3000", "30000002", "1 2 30 40 1\n1 2 inf 40 1\n")
    other = good.replace(".txt", "-b.txt")
    lines = [good, ". x.txt", good, other, bad_ann, "../../up/30000003.jpg x/30000003.txt"]
    scan = scan_split(_dataset(tmp_path, lines), "PCBData/list.txt", parse_annotations=True)
    assert [r.board_id for r in scan.records] == ["30000001"]
    assert scan.notes == [f"{tmp_path}/PCBData/list.txt:3: repeats line 1 (group3000/3000/30000001.jpg); counted once"]
    problems = "\n".join(scan.problems)
    assert "list.txt:2: expected 'image.jpg annotation.txt'" in problems
    assert "list.txt:4: repeats group3000/3000/30000001.jpg of line 1 with another annotation" in problems
    assert "30000002.txt:2: 'inf' is not a finite number in '1 2 inf 40 1'" in problems
    assert "list.txt:6: " in problems and "points outside the dataset folder" in problems
    assert scan.refused == [("30000002", "group3000"), ("30000003", "..")]
    # unless asked to parse them (eval), a pair with a bad annotation is read (a camera source still inspects it)
    assert [r.board_id for r in scan_split(tmp_path, "PCBData/list.txt").records] == ["30000001", "30000002"]


def test_symlinked_folder_inside_the_dataset_is_allowed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    line = _pair(elsewhere, "4000", "40000001", "1 2 30 40 1\n")
    root = _dataset(tmp_path / "data", [line])
    (root / "PCBData" / "group4000").symlink_to(elsewhere / "PCBData" / "group4000")
    assert [r.board_id for r in read_split(root, "PCBData/list.txt")] == ["40000001"]


def test_text_that_is_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbf1 2 30 40 1\n1 2 3\xe9 40 1\n")
    with pytest.raises(DataError, match=r"a\.txt:2: annotation file is not UTF-8 text \(byte 0xe9\)"):
        read_annotations(path)
    path.write_bytes(b"\xef\xbb\xbf1 2 30 40 1\n")
    assert read_annotations(path)[0].box == (1, 2, 30, 40)
