"""OpenCV capture sources: a video file (offline), a V4L2 camera and an RTSP/HTTP stream (live).

A live source that stops delivering raises :class:`SourceError` ("... lost") from ``read()``; the loop
reconnects by calling ``open()`` again, with its own back-off.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import cv2
import numpy as np

from pcb_inspect.inspect.sources.base import SourceEnded, SourceError
from pcb_inspect.inspect.sources.capture import CaptureSource
from pcb_inspect.inspect.sources.uri import Param, parse_params, split_query

_V4L2_INDEX = re.compile(r"^(?:/dev/video)?(\d+)$")
V4L2_PARAMS = (
    Param("width", int, 0, 0, 16384),  # 0: the driver's default
    Param("height", int, 0, 0, 16384),
    Param("fps", float, 0.0, 0.0, 1000.0),
)


class VideoFileSource(CaptureSource):
    """A video file (.mp4 .avi .mkv .mov .m4v) decoded frame by frame; ends, or starts over with ``loop``."""

    live = False

    def __init__(self, uri: str, path: str | Path, *, loop: bool = False, timeout_s: float = 2.0) -> None:
        super().__init__(uri, timeout_s=timeout_s)
        self.path = Path(path)
        self.loop = loop
        self._since_start = 0  # frames read since the file (re)started: a loop over an empty file must end

    @classmethod
    def from_uri(cls, uri: str, *, loop: bool = False, timeout_s: float = 2.0) -> VideoFileSource:
        return cls(uri, uri.removeprefix("file://"), loop=loop, timeout_s=timeout_s)

    def _capture(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise SourceError(f"{self.uri}: video file {self.path} not found")
        self._since_start = 0
        return cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)

    def _open_failed(self) -> str:
        return f"video file {self.path} cannot be decoded"

    def _grab(self) -> np.ndarray | None:
        image = super()._grab()
        self._since_start += image is not None
        return image

    def _read_failed(self) -> np.ndarray:
        rewound = self.loop and self._since_start and self._cap is not None \
            and self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        if rewound:
            self._since_start = 0
            image = self._grab()
            if image is not None:
                return image
        raise SourceEnded(f"{self.uri}: end of video after {self.index} frame(s)")


def _present_devices() -> str:
    found = sorted(glob.glob("/dev/video*"))
    return ", ".join(found) if found else "none"


class V4L2Source(CaptureSource):
    """A V4L2 camera: ``/dev/videoN``, a bare index ``N`` or another device path (``/dev/v4l/by-id/...``),
    optionally ``?width=W&height=H&fps=F`` to ask the driver for a mode."""

    live = True

    def __init__(self, uri: str, device: int | str, *, width: int = 0, height: int = 0, fps: float = 0.0,
                 timeout_s: float = 2.0) -> None:
        super().__init__(uri, timeout_s=timeout_s)
        self.device = device
        self.width, self.height, self.fps = width, height, fps

    @classmethod
    def from_uri(cls, uri: str, *, loop: bool = False, timeout_s: float = 2.0) -> V4L2Source:
        body, query = split_query(uri, "")
        p = parse_params(uri, query, V4L2_PARAMS)
        m = _V4L2_INDEX.match(body)
        device: int | str = int(m.group(1)) if m else body
        return cls(uri, device, width=int(p["width"]), height=int(p["height"]), fps=float(p["fps"]),
                   timeout_s=timeout_s)

    @property
    def device_path(self) -> str:
        return f"/dev/video{self.device}" if isinstance(self.device, int) else self.device

    def _capture(self) -> cv2.VideoCapture:
        if not Path(self.device_path).exists():
            raise SourceError(f"{self.uri}: V4L2 device {self.device_path} not found "
                              f"(video devices here: {_present_devices()})")
        cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if cap.isOpened():
            wanted = ((cv2.CAP_PROP_FRAME_WIDTH, self.width), (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                      (cv2.CAP_PROP_FPS, self.fps))
            for prop, value in wanted:
                if value:
                    cap.set(prop, value)
        return cap

    def _open_failed(self) -> str:
        return f"V4L2 device {self.device_path} exists but cannot be opened (busy, or not a capture device?)"


class StreamSource(CaptureSource):
    """An ``rtsp://``, ``http://`` or ``https://`` stream (RTSP, MJPEG over HTTP) through FFmpeg.

    The URI, query included, goes to FFmpeg unchanged; opening and each read give up after ``timeout_s``.
    """

    live = True

    def __init__(self, uri: str, *, timeout_s: float = 2.0) -> None:
        super().__init__(uri, timeout_s=timeout_s)
        self._url = uri  # with credentials: only FFmpeg sees it

    @classmethod
    def from_uri(cls, uri: str, *, loop: bool = False, timeout_s: float = 2.0) -> StreamSource:
        return cls(uri, timeout_s=timeout_s)

    def _capture(self) -> cv2.VideoCapture:
        ms = int(self.timeout_s * 1000)
        return cv2.VideoCapture(self._url, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])

    def _open_failed(self) -> str:
        return f"stream cannot be opened within {self.timeout_s:g} s (unreachable, refused or not a video)"
