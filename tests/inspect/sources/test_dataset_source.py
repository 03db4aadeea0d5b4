"""A DeepPCB split as a camera: each frame names its tested image, its template and its truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pcb_inspect.inspect.deeppcb import read_split
from pcb_inspect.inspect.sources.base import SourceEnded, SourceError
from pcb_inspect.inspect.sources.dataset import DeepPCBSource
from pcb_inspect.inspect.sources.table import open_source


def _drain(src, limit: int = 1000) -> list:
    frames = []
    with pytest.raises(SourceEnded):
        for _ in range(limit):
            frames.append(src.read())
    return frames


def test_trainval_split_frames_match_the_list(synthetic_root: Path) -> None:
    records = read_split(synthetic_root, "PCBData/trainval.txt")
    src = open_source(f"deeppcb://{synthetic_root}")
    assert isinstance(src, DeepPCBSource) and not src.live
    with src:
        frames = _drain(src)
    assert len(frames) == len(records)
    for i, (f, rec) in enumerate(zip(frames, records, strict=True)):
        assert f.index == i and f.image is None and not f.error
        assert (f.path, f.template_path, f.board_id) == (rec.tested_path, rec.template_path, rec.board_id)
        assert f.truth == rec.load_ground_truth() and f.truth  # synthetic boards all have defects


def test_test_split_relative_root_and_loop(synthetic_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(synthetic_root.parent)
    records = read_split(synthetic_root, "PCBData/test.txt")
    with open_source(f"deeppcb://{synthetic_root.name}?split=PCBData/test.txt", loop=True) as src:
        frames = [src.read() for _ in range(len(records) + 2)]
    assert [f.board_id for f in frames] == [r.board_id for r in records] + [r.board_id for r in records[:2]]
    assert frames[-1].index == len(records) + 1


def test_unreadable_annotation_gives_no_truth_but_still_a_frame(synthetic_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    first = read_split(root, "PCBData/trainval.txt")[0]
    first.annotation_path.write_text("this is not x1 y1 x2 y2 type\n")
    with open_source(f"deeppcb://{root}") as src:
        f0, f1 = src.read(), src.read()
    assert f0.truth is None and f0.path == first.tested_path and not f0.error
    assert f1.truth


def test_missing_dataset_or_split_fails_at_open(tmp_path: Path, synthetic_root: Path) -> None:
    with pytest.raises(SourceError, match=r"deeppcb://.*nothere.*dataset folder not found"):
        open_source(f"deeppcb://{tmp_path / 'nothere'}").open()
    with pytest.raises(SourceError, match=r"PCBData/val\.txt: split list not found"):
        open_source(f"deeppcb://{synthetic_root}?split=PCBData/val.txt").open()
    with pytest.raises(SourceError, match=r"unknown parameter 'group'; valid parameters: split"):
        open_source(f"deeppcb://{synthetic_root}?group=1")
    with pytest.raises(SourceError, match="no dataset folder"):
        open_source("deeppcb://?split=PCBData/test.txt")


def test_real_deeppcb_split_reads_as_a_camera(deeppcb_root: Path) -> None:
    with open_source(f"deeppcb://{deeppcb_root}?split=PCBData/trainval.txt") as src:
        frames = [src.read() for _ in range(3)]
    for f in frames:
        assert f.path.is_file() and f.template_path.is_file() and f.path.name.endswith("_test.jpg")
        assert f.truth and all(gt.box[2] > gt.box[0] for gt in f.truth)
