"""What every OpenCV ``VideoCapture`` source shares: open, read a frame as 2-D uint8 gray, release.

A subclass says how to make its capture (:meth:`CaptureSource._capture`) and what a failed read means
(:meth:`CaptureSource._read_failed`): a video file has ended, a camera or stream was lost.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from pcb_inspect.inspect.sources.base import Frame, Source, SourceError
from pcb_inspect.inspect.sources.uri import redact


def to_gray(image: np.ndarray) -> np.ndarray:
    """A captured image (BGR, BGRA, gray; 8 or 16 bit) as 2-D uint8 gray, the engine's input."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise SourceError(f"captured frame has unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.ndim != 2:
        raise SourceError(f"captured frame has unsupported shape {image.shape}")
    return np.ascontiguousarray(image)


class CaptureSource(Source):
    """A source read through ``cv2.VideoCapture``; frames carry decoded pixels in ``image``."""

    def __init__(self, uri: str, *, timeout_s: float = 2.0) -> None:
        super().__init__(redact(uri))
        if not timeout_s > 0:
            raise SourceError(f"{self.uri}: timeout {timeout_s!r} s must be > 0")
        self.timeout_s = float(timeout_s)
        self._cap: cv2.VideoCapture | None = None

    def _capture(self) -> cv2.VideoCapture:
        """A new capture; may raise SourceError naming the URI (the caller checks ``isOpened``)."""
        raise NotImplementedError

    def _open_failed(self) -> str:
        """Why the capture did not open, for the one-line error."""
        return "cannot be opened"

    def open(self) -> None:
        self.close()
        cap = self._capture()
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.uri}: {self._open_failed()}")
        self._cap = cap

    def _grab(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.uri}: read before open()")
        ok, image = self._cap.read()
        return image if ok and image is not None and image.size else None

    def _read_failed(self) -> np.ndarray:
        """A read returned no frame: return one (a restarted video) or raise. Default: the source is lost."""
        raise SourceError(f"{self.uri}: lost (no frame within {self.timeout_s:g} s)")

    def read(self) -> Frame | None:
        image = self._grab()
        if image is None:
            image = self._read_failed()
        frame = Frame(index=self.index, timestamp=time.time(), source=self.uri, image=to_gray(image))
        self.index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
