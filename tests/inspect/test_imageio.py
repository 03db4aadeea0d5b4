from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.errors import ImageError
from pcb_inspect.inspect.imageio import read_gray


def _jpeg(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def test_reads_gray_and_converts_colour(tmp_path: Path) -> None:
    img = np.zeros((32, 48, 3), np.uint8)
    img[..., 2] = 200
    out = read_gray(_jpeg(tmp_path / "c.jpg", img))
    assert out.shape == (32, 48) and out.dtype == np.uint8


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "t.jpg", (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8))
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ImageError, match=r"t\.jpg: JPEG is truncated"):
        read_gray(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"not an image at all", "not a readable image")],
)
def test_bad_files_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=rf"bad\.png: {message}"):
        read_gray(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="image file not found"):
        read_gray(tmp_path / "nope.jpg")


def _board_jpeg(tmp_path: Path) -> Path:
    from pcb_inspect.inspect.synthetic import generate_board

    return _jpeg(tmp_path / "board.jpg", generate_board(4).template)


@pytest.mark.parametrize("fill", [b"\xff", b"\x00", b"random"])
def test_jpeg_corrupted_in_the_middle_is_refused(tmp_path: Path, fill: bytes) -> None:
    """The end marker is intact, so only the decoder's own warnings (or the zero run) can tell. Not every
    overwrite can be told this way (random bytes that happen to decode cleanly): the engine's difference
    limit catches the ones that garble the board (tests/inspect/test_engine.py)."""
    path = _board_jpeg(tmp_path)
    data = bytearray(path.read_bytes())
    mid, n = len(data) // 3, 64
    data[mid : mid + n] = np.random.default_rng(2).integers(0, 256, n, np.uint8).tobytes() if fill == b"random" else fill * n
    path.write_bytes(bytes(data))
    assert cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) is not None  # what OpenCV alone would have accepted
    with pytest.raises(ImageError, match=r"board\.jpg: JPEG is corrupt"):
        read_gray(path)


def test_oversized_images_are_refused_before_decoding(tmp_path: Path) -> None:
    big = np.zeros((10, 5000), np.uint8)
    for suffix in (".png", ".jpg"):
        path = _jpeg(tmp_path / f"big{suffix}", big)
        with pytest.raises(ImageError, match=rf"big\{suffix}: image is 5000x10, larger than 4096"):
            read_gray(path)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="is a folder"):
        read_gray(tmp_path)


def test_every_deeppcb_image_reads_in_strict_mode(deeppcb_root: Path) -> None:
    paths = sorted((deeppcb_root / "PCBData").glob("*/*/*.jpg"))
    assert len(paths) >= 2000
    for p in paths:
        assert read_gray(p).shape == (640, 640)
