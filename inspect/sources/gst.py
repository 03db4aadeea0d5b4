"""GStreamer sources: a raw pipeline (``gst:...``) and a Jetson CSI camera (``csi://N?...``).

Both need an OpenCV built with GStreamer (JetPack's is; the pip wheels are not): where it is missing,
``open()`` says so in one line instead of failing obscurely.
"""

from __future__ import annotations

import re

import cv2

from pcb_inspect.inspect.sources.base import SourceError
from pcb_inspect.inspect.sources.capture import CaptureSource
from pcb_inspect.inspect.sources.uri import Param, parse_params, split_query

#: Appended to a pipeline that does not end in an appsink: keep only the newest buffer (a live camera).
APPSINK = "appsink drop=1 max-buffers=1"

CSI_PARAMS = (
    Param("width", int, 1920, 64, 8192),
    Param("height", int, 1080, 64, 8192),
    Param("fps", int, 30, 1, 240),
    Param("flip", int, 0, 0, 7),  # nvvidconv flip-method: 0 none, 2 rotate 180, 4 horizontal, 6 vertical...
)
_GST_LINE = re.compile(r"^\s*GStreamer:\s*(\S+)", re.MULTILINE)


def gstreamer_available() -> bool:
    """Whether this OpenCV was built with GStreamer (its build information says ``GStreamer: YES``)."""
    m = _GST_LINE.search(cv2.getBuildInformation())
    return bool(m) and m.group(1).upper() != "NO"


def with_appsink(pipeline: str) -> str:
    """The pipeline, ending in an appsink (OpenCV reads from it); one is added when missing."""
    pipeline = pipeline.strip().rstrip("!").strip()
    last = pipeline.rsplit("!", 1)[-1].split()
    if last and last[0] == "appsink":
        return pipeline
    return f"{pipeline} ! {APPSINK}" if pipeline else APPSINK


def csi_pipeline(sensor_id: int = 0, width: int = 1920, height: int = 1080, fps: int = 30,
                 flip: int = 0) -> str:
    """The Jetson Argus pipeline for CSI sensor ``sensor_id``: NVMM capture, flip in nvvidconv, 8-bit gray."""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1 ! "
        f"nvvidconv flip-method={flip} ! video/x-raw,format=GRAY8 ! {APPSINK}"
    )


class GstSource(CaptureSource):
    """``gst:PIPELINE``: a raw GStreamer pipeline read through OpenCV's GStreamer backend; live."""

    live = True

    def __init__(self, uri: str, pipeline: str, *, timeout_s: float = 2.0) -> None:
        super().__init__(uri, timeout_s=timeout_s)
        self.pipeline = with_appsink(pipeline)
        if self.pipeline == APPSINK:
            raise SourceError(f"{self.uri}: empty GStreamer pipeline (give gst:<elements> ! appsink)")

    @classmethod
    def from_uri(cls, uri: str, *, loop: bool = False, timeout_s: float = 2.0) -> GstSource:
        return cls(uri, uri.removeprefix("gst:"), timeout_s=timeout_s)

    def _capture(self) -> cv2.VideoCapture:
        if not gstreamer_available():
            raise SourceError(f"{self.uri}: this OpenCV ({cv2.__version__}) is built without GStreamer "
                              "(cv2.getBuildInformation() says 'GStreamer: NO'); use an OpenCV built with it")
        return cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)

    def _open_failed(self) -> str:
        return f"GStreamer pipeline did not start: {self.pipeline}"


class CsiSource(GstSource):
    """``csi://N?width=1920&height=1080&fps=30&flip=0``: Jetson CSI sensor N through ``nvarguscamerasrc``."""

    def __init__(self, uri: str, sensor_id: int = 0, *, width: int = 1920, height: int = 1080, fps: int = 30,
                 flip: int = 0, timeout_s: float = 2.0) -> None:
        super().__init__(uri, csi_pipeline(sensor_id, width, height, fps, flip), timeout_s=timeout_s)
        self.sensor_id = sensor_id

    @classmethod
    def from_uri(cls, uri: str, *, loop: bool = False, timeout_s: float = 2.0) -> CsiSource:
        body, query = split_query(uri, "csi://")
        body = body or "0"
        if not body.isdigit() or int(body) > 15:
            raise SourceError(f"{uri}: CSI sensor id {body!r} must be an integer in [0, 15] (csi://0)")
        p = parse_params(uri, query, CSI_PARAMS)
        return cls(uri, int(body), width=int(p["width"]), height=int(p["height"]), fps=int(p["fps"]),
                   flip=int(p["flip"]), timeout_s=timeout_s)
