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
