"""Every kind of source in one table: how a URI names it, which class reads it, and the help text.

``open_source(uri)`` finds the kind from the URI's scheme (or, for a plain path, from what the path is)
and returns the source unopened: the camera loop calls ``open()`` and owns reconnection.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pcb_inspect.inspect.sources.base import Source, SourceError
from pcb_inspect.inspect.sources.dataset import DeepPCBSource
from pcb_inspect.inspect.sources.files import FolderSource, ImageFileSource, is_glob
from pcb_inspect.inspect.sources.gst import CsiSource, GstSource
from pcb_inspect.inspect.sources.synthetic import SyntheticSource
from pcb_inspect.inspect.sources.uri import IMAGE_SUFFIXES, VIDEO_SUFFIXES, redact
from pcb_inspect.inspect.sources.video import StreamSource, V4L2Source, VideoFileSource


class SourceKind(StrEnum):
    IMAGE = "image"
    FOLDER = "folder"
    VIDEO = "video"
    V4L2 = "v4l2"
    STREAM = "stream"
    GST = "gst"
    CSI = "csi"
    DEEPPCB = "deeppcb"
    SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class SourceEntry:
    """One row: ``make(uri, loop=, timeout_s=)`` builds the (unopened) source."""

    make: Callable[..., Source]
    forms: str  # how a URI names this kind
    what: str
    pace: str  # "offline" (the loop waits for the engine) or "live" (the loop drops stale frames)


SOURCES: dict[SourceKind, SourceEntry] = {
    SourceKind.IMAGE: SourceEntry(ImageFileSource.from_uri, "board.jpg | file://board.jpg",
                                  "one image file (--loop: the same board again and again)", "offline"),
    SourceKind.FOLDER: SourceEntry(FolderSource.from_uri, "boards/ | 'boards/*.jpg'",
                                   "image files of a folder or glob, natural order (--loop: start over)",
                                   "offline"),
    SourceKind.VIDEO: SourceEntry(VideoFileSource.from_uri, "line.mp4 (" + " ".join(VIDEO_SUFFIXES) + ")",
                                  "a video file, frame by frame (--loop: start over)", "offline"),
    SourceKind.V4L2: SourceEntry(V4L2Source.from_uri, "/dev/video0 | 0 [?width=&height=&fps=]",
                                 "a V4L2 camera", "live"),
    SourceKind.STREAM: SourceEntry(StreamSource.from_uri, "rtsp://... | http(s)://...",
                                   "an RTSP or MJPEG-over-HTTP stream (FFmpeg)", "live"),
    SourceKind.GST: SourceEntry(GstSource.from_uri, "gst:PIPELINE",
                                "a GStreamer pipeline (appsink added if missing; OpenCV with GStreamer)",
                                "live"),
    SourceKind.CSI: SourceEntry(CsiSource.from_uri, "csi://0?width=1920&height=1080&fps=30&flip=0",
                                "a Jetson CSI camera (nvarguscamerasrc; needs OpenCV with GStreamer)",
                                "live"),
    SourceKind.DEEPPCB: SourceEntry(DeepPCBSource.from_uri, "deeppcb://ROOT?split=PCBData/test.txt",
                                    "a DeepPCB split, each board with its template and truth (--loop)",
                                    "offline"),
    SourceKind.SYNTHETIC: SourceEntry(SyntheticSource.from_uri,
                                      "synthetic://?fps=30&defect_rate=0.3&seed=0&boards=16&size=640",
                                      "the demo conveyor: moved, degraded synthetic boards (fps=0: unpaced)",
                                      "live if fps>0"),
}

_SCHEMES: dict[str, SourceKind] = {
    "rtsp": SourceKind.STREAM, "http": SourceKind.STREAM, "https": SourceKind.STREAM, "gst": SourceKind.GST,
    "csi": SourceKind.CSI, "deeppcb": SourceKind.DEEPPCB, "synthetic": SourceKind.SYNTHETIC,
}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(//)?")
_V4L2 = re.compile(r"^(?:\d+|/dev/[^?]+)(?:\?.*)?$")


def _valid() -> str:
    schemes = ", ".join(f"{s}:" if k is SourceKind.GST else f"{s}://" for s, k in _SCHEMES.items())
    return f"file://, {schemes}, or a path (image, video, folder, glob, /dev/videoN, camera index N)"


def _path_kind(uri: str, path: str) -> SourceKind:
    if _V4L2.match(path):
        return SourceKind.V4L2
    if is_glob(path) or Path(path).is_dir():
        return SourceKind.FOLDER
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return SourceKind.IMAGE
    if suffix in VIDEO_SUFFIXES:
        return SourceKind.VIDEO
    if not suffix:
        return SourceKind.FOLDER  # a folder that is not there yet: open() says so
    images, videos = " ".join(IMAGE_SUFFIXES), " ".join(VIDEO_SUFFIXES)
    raise SourceError(f"{redact(uri)}: {suffix!r} is neither an image ({images}) nor a video ({videos}) "
                      f"suffix; valid sources: {_valid()}")


def source_kind(uri: str) -> SourceKind:
    """Which kind of source ``uri`` names; raises SourceError listing the valid forms when none."""
    uri = uri.strip()
    if not uri:
        raise SourceError(f"empty source URI; valid sources: {_valid()}")
    m = _SCHEME.match(uri)
    if m:
        scheme = m.group(1).lower()
        if scheme in _SCHEMES and (m.group(2) or scheme == "gst"):
            return _SCHEMES[scheme]
        if scheme == "file" and m.group(2):
            return _path_kind(uri, uri[m.end():])
        if m.group(2) or not Path(uri).exists():
            raise SourceError(f"{redact(uri)}: unknown source scheme {scheme!r}; valid sources: {_valid()}")
    return _path_kind(uri, uri)


def open_source(uri: str, *, loop: bool = False, timeout_s: float = 2.0) -> Source:
    """The source ``uri`` names, not yet opened.

    Args:
        uri: a path, a glob, a camera index or device, or ``scheme://...`` (see :func:`describe_sources`).
        loop: offline sources start over at their end instead of raising SourceEnded.
        timeout_s: how long a live source's ``open()``/``read()`` may wait before giving up (``read``: or
            returning None).

    Raises:
        SourceError: the URI names no known kind, or its query parameters are wrong (one line saying which).
    """
    if not timeout_s > 0:
        raise SourceError(f"{redact(uri)}: timeout {timeout_s!r} s must be > 0")
    uri = uri.strip()
    kind = source_kind(uri)
    return SOURCES[kind].make(uri, loop=loop, timeout_s=timeout_s)


def describe_sources() -> str:
    """Help text: one line per kind, from the table."""
    lines = ["Sources (a URI; credentials in it are never shown):"]
    for kind, e in SOURCES.items():
        lines.append(f"  {kind.value:<10} {e.forms}\n  {'':<10} {e.what} [{e.pace}]")
    return "\n".join(lines)
