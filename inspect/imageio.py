"""Reading board images as 8-bit grayscale, refusing the broken ones OpenCV would quietly accept."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pcb_inspect.inspect.errors import ImageError

_JPEG_EOI = b"\xff\xd9"


def _jpeg_is_truncated(data: bytes) -> bool:
    """OpenCV decodes a truncated JPEG without raising (missing rows come back grey): check the end marker."""
    tail = data[-64:].rstrip(b"\x00\r\n ")
    return not tail.endswith(_JPEG_EOI)


def decode_gray(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to a 2-D uint8 array; 3-channel images are converted to gray."""
    if not data:
        raise ImageError(f"{name}: file is empty")
    if data[:2] == b"\xff\xd8" and _jpeg_is_truncated(data):
        raise ImageError(f"{name}: JPEG is truncated (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ImageError(f"{name}: not a readable image")
    if image.ndim != 2 or image.shape[0] < 8 or image.shape[1] < 8:
        raise ImageError(f"{name}: unusable image shape {image.shape}")
    return image


def read_gray(path: str | Path) -> np.ndarray:
    """Read an image file as 2-D uint8 gray, with one clear error naming the file if it cannot be used."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read image ({exc.strerror or exc})") from None
    return decode_gray(data, str(path))
