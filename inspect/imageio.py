"""Reading board images as 8-bit grayscale, refusing the broken ones OpenCV would quietly accept.

OpenCV decodes a truncated or corrupted JPEG without raising (a libjpeg warning on stderr, grey or garbled
rows), so JPEGs go through libjpeg-turbo in strict mode instead (``simplejpeg``: any libjpeg warning is an
error), and a long run of zero bytes in the compressed data (a block of the file overwritten, which can
still decode "cleanly") is refused too: on DeepPCB's 2,000 JPEGs no run after the scan header is longer than
4 bytes. Other formats (PNG, BMP, TIFF) go through OpenCV. Images larger than ``MAX_SIDE`` a side are refused
before they are decoded (a 8000x8000 pair costs 800 MB and means a wrong camera or a wrong file).
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import simplejpeg

from pcb_inspect.inspect.errors import ImageError

_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_JPEG_SOS = b"\xff\xda"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Longest side accepted, in pixels (a 16-megapixel line-scan frame is 4096 x 4096).
MAX_SIDE = 4096
MIN_SIDE = 8
#: A run of this many zero bytes in a JPEG's compressed data means a block of the file was overwritten.
ZERO_RUN = 16


def _jpeg_is_truncated(data: bytes) -> bool:
    """A JPEG without its end-of-image marker lost its tail (OpenCV would fill the missing rows with grey)."""
    tail = data[-64:].rstrip(b"\x00\r\n ")
    return not tail.endswith(_JPEG_EOI)


def _check_side(name: str, height: int, width: int) -> None:
    if height > MAX_SIDE or width > MAX_SIDE:
        raise ImageError(f"{name}: image is {width}x{height}, larger than {MAX_SIDE} px a side (wrong camera or file?)")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ImageError(f"{name}: image is {width}x{height}, smaller than {MIN_SIDE} px a side")


def _decode_jpeg(data: bytes, name: str) -> np.ndarray:
    if _jpeg_is_truncated(data):
        raise ImageError(f"{name}: JPEG is truncated (no end-of-image marker)")
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as exc:
        raise ImageError(f"{name}: not a readable JPEG ({exc})") from None
    _check_side(name, height, width)
    scan = data.find(_JPEG_SOS)
    if scan >= 0 and data.find(bytes(ZERO_RUN), scan) >= 0:
        raise ImageError(f"{name}: JPEG is corrupt (a run of {ZERO_RUN}+ zero bytes inside the image data)")
    try:
        image = simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)
    except ValueError as exc:
        reason = " ".join(str(exc).split()) or "decoder error"
        raise ImageError(f"{name}: JPEG is corrupt ({reason})") from None
    return np.ascontiguousarray(image[:, :, 0])


def decode_gray(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to a 2-D uint8 array; 3-channel images are converted to gray."""
    if not data:
        raise ImageError(f"{name}: file is empty")
    if data[:2] == _JPEG_SOI:
        return _decode_jpeg(data, name)
    if data[:8] == _PNG_MAGIC and len(data) >= 24:  # the IHDR chunk gives the size before decoding
        width, height = struct.unpack(">II", data[16:24])
        _check_side(name, height, width)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ImageError(f"{name}: not a readable image")
    if image.ndim != 2:
        raise ImageError(f"{name}: unusable image shape {image.shape}")
    _check_side(name, *image.shape)
    return image


def read_gray(path: str | Path) -> np.ndarray:
    """Read an image file as 2-D uint8 gray, with one clear error naming the file if it cannot be used."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read image ({exc.strerror or exc})") from None
    return decode_gray(data, str(path))
