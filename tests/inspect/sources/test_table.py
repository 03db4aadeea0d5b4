"""The source table: which kind a URI names, the errors for the ones it does not, and the help text."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcb_inspect.inspect.sources.base import SourceError
from pcb_inspect.inspect.sources.dataset import DeepPCBSource
from pcb_inspect.inspect.sources.files import FolderSource, ImageFileSource
from pcb_inspect.inspect.sources.gst import CsiSource, GstSource
from pcb_inspect.inspect.sources.synthetic import SyntheticSource
from pcb_inspect.inspect.sources.table import SOURCES, SourceKind, describe_sources, open_source, source_kind
from pcb_inspect.inspect.sources.uri import redact
from pcb_inspect.inspect.sources.video import StreamSource, V4L2Source, VideoFileSource

CLASSES = {
    SourceKind.IMAGE: ImageFileSource, SourceKind.FOLDER: FolderSource, SourceKind.VIDEO: VideoFileSource,
    SourceKind.V4L2: V4L2Source, SourceKind.STREAM: StreamSource, SourceKind.GST: GstSource,
    SourceKind.CSI: CsiSource, SourceKind.DEEPPCB: DeepPCBSource, SourceKind.SYNTHETIC: SyntheticSource,
}


@pytest.mark.parametrize(("uri", "kind"), [
    ("board.jpg", SourceKind.IMAGE),
    ("BOARD.PNG", SourceKind.IMAGE),
    ("file:///data/board.tif", SourceKind.IMAGE),
    ("boards/*.jpg", SourceKind.FOLDER),
    ("boards/img?.png", SourceKind.FOLDER),
    ("boards", SourceKind.FOLDER),
    ("line.mp4", SourceKind.VIDEO),
    ("file://line.MKV", SourceKind.VIDEO),
    ("0", SourceKind.V4L2),
    ("/dev/video2", SourceKind.V4L2),
    ("/dev/v4l/by-id/usb-cam-video-index0", SourceKind.V4L2),
    ("rtsp://cam.local:554/stream1", SourceKind.STREAM),
    ("http://cam/mjpg", SourceKind.STREAM),
    ("HTTPS://cam/mjpg", SourceKind.STREAM),
    ("gst:videotestsrc ! appsink", SourceKind.GST),
    ("csi://0", SourceKind.CSI),
    ("deeppcb://data/deeppcb", SourceKind.DEEPPCB),
    ("synthetic://", SourceKind.SYNTHETIC),
    ("  synthetic://?fps=0  ", SourceKind.SYNTHETIC),
])
def test_kind_from_uri(uri: str, kind: SourceKind) -> None:
    assert source_kind(uri) is kind
    src = open_source(uri)  # unopened: no device, file or network is touched
    assert type(src) is CLASSES[kind]


def test_existing_folder_with_a_dot_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "run.v2").mkdir()
    assert source_kind(str(tmp_path / "run.v2")) is SourceKind.FOLDER


@pytest.mark.parametrize("uri", ["ftp://host/boards", "s3://bucket/boards", "v4l2:0"])
def test_unknown_scheme_lists_the_valid_ones(uri: str) -> None:
    with pytest.raises(SourceError) as err:
        open_source(uri)
    msg = str(err.value)
    assert msg.startswith(uri) and "unknown source scheme" in msg and "\n" not in msg
    for form in ("rtsp://", "gst:", "csi://", "deeppcb://", "synthetic://", "/dev/videoN"):
        assert form in msg


def test_unknown_suffix_and_empty_uri() -> None:
    with pytest.raises(SourceError, match=r"notes\.txt: '\.txt' is neither an image"):
        open_source("notes.txt")
    with pytest.raises(SourceError, match="empty source URI"):
        open_source("  ")


def test_bad_timeout_refused() -> None:
    with pytest.raises(SourceError, match=r"timeout 0 s must be > 0"):
        open_source("synthetic://", timeout_s=0)


def test_credentials_never_shown() -> None:
    assert redact("rtsp://admin:hunter2@10.0.0.5:554/live?token=abc&x=1") == "rtsp://10.0.0.5:554/live?token=***&x=1"
    src = open_source("rtsp://admin:hunter2@10.0.0.5/live")
    assert src.uri == "rtsp://10.0.0.5/live"
    with pytest.raises(SourceError) as err:
        open_source("ftp://admin:hunter2@host/x")
    assert "hunter2" not in str(err.value) and "admin" not in str(err.value)


def test_describe_sources_has_a_line_for_each_kind() -> None:
    text = describe_sources()
    for kind, entry in SOURCES.items():
        assert f"  {kind.value} " in text and entry.forms in text
    assert set(SOURCES) == set(SourceKind)


@pytest.mark.parametrize("uri", ["board.png", "boards/", "line.avi", "rtsp://cam/x", "deeppcb://data", "synthetic://"])
def test_read_before_open_is_a_clear_error(uri: str) -> None:
    with pytest.raises(SourceError, match=r"read before open\(\)"):
        open_source(uri).read()
