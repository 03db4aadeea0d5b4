"""GStreamer and Jetson CSI sources: the pipeline strings, and a clear error where OpenCV lacks GStreamer."""

from __future__ import annotations

import pytest

from pcb_inspect.inspect.sources.base import SourceError
from pcb_inspect.inspect.sources.gst import (
    APPSINK,
    CsiSource,
    GstSource,
    csi_pipeline,
    gstreamer_available,
    with_appsink,
)
from pcb_inspect.inspect.sources.table import open_source


def test_csi_pipeline_string() -> None:
    assert csi_pipeline(1, 1280, 720, 60, 2) == (
        "nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=60/1 ! "
        "nvvidconv flip-method=2 ! video/x-raw,format=GRAY8 ! appsink drop=1 max-buffers=1"
    )


def test_csi_uri_builds_its_pipeline_with_defaults_and_checks_its_query() -> None:
    src = open_source("csi://0")
    assert isinstance(src, CsiSource) and src.live
    assert src.pipeline == csi_pipeline(0, 1920, 1080, 30, 0)
    src = open_source("csi://2?width=3840&height=2160&fps=15&flip=6")
    assert "sensor-id=2 " in src.pipeline and "width=3840,height=2160,framerate=15/1" in src.pipeline
    assert "flip-method=6" in src.pipeline
    with pytest.raises(SourceError, match=r"flip=9 must be an integer in \[0, 7\]"):
        open_source("csi://0?flip=9")
    with pytest.raises(SourceError, match=r"fps=2\.5 must be an integer"):
        open_source("csi://0?fps=2.5")
    with pytest.raises(SourceError, match=r"unknown parameter 'exposure'"):
        open_source("csi://0?exposure=1")
    with pytest.raises(SourceError, match=r"sensor id 'cam' must be an integer in \[0, 15\]"):
        open_source("csi://cam")


@pytest.mark.parametrize(("given", "expected"), [
    ("videotestsrc ! videoconvert", f"videotestsrc ! videoconvert ! {APPSINK}"),
    ("videotestsrc ! videoconvert ! ", f"videotestsrc ! videoconvert ! {APPSINK}"),
    ("videotestsrc ! appsink name=s sync=false", "videotestsrc ! appsink name=s sync=false"),
    ("videotestsrc ! appsinkbin", f"videotestsrc ! appsinkbin ! {APPSINK}"),
])
def test_pipeline_gets_an_appsink_when_missing(given: str, expected: str) -> None:
    assert with_appsink(given) == expected


def test_gst_uri_keeps_the_pipeline() -> None:
    src = open_source("gst:videotestsrc num-buffers=3 ! videoconvert")
    assert isinstance(src, GstSource)
    assert src.pipeline == f"videotestsrc num-buffers=3 ! videoconvert ! {APPSINK}"
    with pytest.raises(SourceError, match="empty GStreamer pipeline"):
        open_source("gst:")


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer: the error case cannot happen")
@pytest.mark.parametrize("uri", ["gst:videotestsrc ! videoconvert", "csi://0"])
def test_open_without_gstreamer_says_so(uri: str) -> None:
    src = open_source(uri)
    with pytest.raises(SourceError, match=r"built without GStreamer") as err:
        src.open()
    assert str(err.value).startswith(uri) and "\n" not in str(err.value)
