"""Image file, folder and glob sources: order, looping, missing folders and files that vanish."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.sources.base import SourceEnded, SourceError
from pcb_inspect.inspect.sources.files import FolderSource, ImageFileSource
from pcb_inspect.inspect.sources.table import open_source


def _write(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((16, 16), value, np.uint8))
    return path


def _drain(src, limit: int = 100) -> list:
    frames = []
    with pytest.raises(SourceEnded):
        for _ in range(limit):
            frames.append(src.read())
    return frames


def test_image_file_gives_one_frame_with_its_path_then_ends(tmp_path: Path) -> None:
    p = _write(tmp_path / "board.png")
    src = open_source(str(p))
    assert isinstance(src, ImageFileSource) and not src.live
    with src:
        frames = _drain(src)
    assert [f.path for f in frames] == [p]
    f = frames[0]
    assert f.image is None and f.index == 0 and f.board_id == "board" and f.source == str(p) and not f.error
    assert f.timestamp > 0


def test_image_file_repeats_with_loop_and_accepts_file_uri(tmp_path: Path) -> None:
    p = _write(tmp_path / "board.jpg")
    with open_source(f"file://{p}", loop=True) as src:
        frames = [src.read() for _ in range(5)]
    assert [f.path for f in frames] == [p] * 5
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]


def test_missing_image_file_fails_at_open_naming_it(tmp_path: Path) -> None:
    src = open_source(str(tmp_path / "nope.png"))  # building it does no I/O
    with pytest.raises(SourceError, match=r"nope\.png.*not found"):
        src.open()


def test_folder_reads_images_in_natural_order_and_skips_other_files(tmp_path: Path) -> None:
    for name in ("b10.png", "b2.png", "b1.jpg", "a.bmp"):
        _write(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a board")
    (tmp_path / "sub.png").mkdir()  # a folder with an image suffix is not a file
    src = open_source(str(tmp_path))
    assert isinstance(src, FolderSource) and not src.live
    with src:
        names = [f.path.name for f in _drain(src)]
    assert names == ["a.bmp", "b1.jpg", "b2.png", "b10.png"]


def test_folder_loop_starts_over_and_sees_new_files(tmp_path: Path) -> None:
    _write(tmp_path / "1.png")
    _write(tmp_path / "2.png")
    with open_source(str(tmp_path), loop=True) as src:
        names = [src.read().path.name for _ in range(3)]
        _write(tmp_path / "3.png")  # arrives during the pass: seen when the loop lists again
        names += [src.read().path.name for _ in range(4)]
    assert names == ["1.png", "2.png", "1.png", "2.png", "1.png", "2.png", "3.png"]


def test_vanished_file_is_a_frame_with_error_and_the_run_goes_on(tmp_path: Path) -> None:
    for i in range(3):
        _write(tmp_path / f"{i}.png")
    with open_source(str(tmp_path)) as src:
        (tmp_path / "1.png").unlink()
        frames = _drain(src)
    assert [f.path.name for f in frames] == ["0.png", "1.png", "2.png"]
    assert [bool(f.error) for f in frames] == [False, True, False]
    assert "1.png" in frames[1].error and "vanished" in frames[1].error


@pytest.mark.parametrize("make", ["empty", "missing", "only-text"])
def test_empty_or_missing_folder_fails_at_open(tmp_path: Path, make: str) -> None:
    folder = tmp_path / "boards"
    if make != "missing":
        folder.mkdir()
    if make == "only-text":
        (folder / "a.txt").write_text("x")
    with pytest.raises(SourceError, match="boards") as err:
        open_source(str(folder)).open()
    assert "\n" not in str(err.value)


def test_glob_matches_in_order_and_recurses(tmp_path: Path) -> None:
    for name in ("x/3.jpg", "x/20.jpg", "x/1.png", "y/deep/5.jpg"):
        _write(tmp_path / name)
    with open_source(str(tmp_path / "x" / "*.jpg")) as src:
        assert [f.path.name for f in _drain(src)] == ["3.jpg", "20.jpg"]
    with open_source(str(tmp_path / "**" / "*.jpg")) as src:
        assert sorted(f.path.name for f in _drain(src)) == ["20.jpg", "3.jpg", "5.jpg"]
    with pytest.raises(SourceError, match=r"no image files.*\*\.tif"):
        open_source(str(tmp_path / "x" / "*.tif")).open()
