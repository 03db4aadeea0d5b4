"""Video file and V4L2 sources through real OpenCV captures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.sources.base import SourceEnded, SourceError
from pcb_inspect.inspect.sources.table import open_source
from pcb_inspect.inspect.sources.video import V4L2Source, VideoFileSource

LEVELS = (20, 90, 160, 230)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four colour frames (MJPG in .avi), each a flat grey level with a bright box that moves."""
    path = tmp_path_factory.mktemp("video") / "line.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))
    assert writer.isOpened()
    for i, level in enumerate(LEVELS):
        frame = np.full((64, 96, 3), level, np.uint8)
        frame[8:24, 8 + 16 * i:24 + 16 * i] = 255
        writer.write(frame)
    writer.release()
    return path


def test_video_file_frames_come_back_gray_in_order_then_end(video: Path) -> None:
    src = open_source(str(video))
    assert isinstance(src, VideoFileSource) and not src.live
    with src:
        frames = [src.read() for _ in LEVELS]
        with pytest.raises(SourceEnded, match="line.avi"):
            src.read()
    for i, (f, level) in enumerate(zip(frames, LEVELS, strict=True)):
        assert f.image.shape == (64, 96) and f.image.dtype == np.uint8 and f.path is None
        assert abs(int(np.median(f.image)) - level) <= 3  # JPEG keeps flat levels
        assert f.image[16, 16 + 16 * i] > 240
        assert f.index == i and f.source == str(video)


def test_video_file_loop_starts_over(video: Path) -> None:
    with open_source(str(video), loop=True) as src:
        medians = [int(np.median(src.read().image)) for _ in range(2 * len(LEVELS) + 1)]
    expected = list(LEVELS) * 2 + [LEVELS[0]]
    assert all(abs(m - e) <= 3 for m, e in zip(medians, expected, strict=True)), medians


def test_video_file_missing_or_undecodable(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"gone\.mp4 not found"):
        open_source(str(tmp_path / "gone.mp4")).open()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match=r"junk\.mp4 cannot be decoded"):
        open_source(str(junk)).open()


def _free_video_index() -> int:
    return next(i for i in range(60, 200) if not Path(f"/dev/video{i}").exists())


@pytest.mark.parametrize("form", ["index", "path"])
def test_missing_v4l2_device_fails_at_open_naming_it(form: str) -> None:
    n = _free_video_index()
    src = open_source(str(n) if form == "index" else f"/dev/video{n}")
    assert isinstance(src, V4L2Source) and src.live
    with pytest.raises(SourceError, match=rf"/dev/video{n} not found"):
        src.open()


def test_v4l2_query_is_checked() -> None:
    src = open_source("/dev/video0?width=1280&height=720&fps=30")
    assert (src.width, src.height, src.fps) == (1280, 720, 30.0)
    with pytest.raises(SourceError, match=r"width=-5 must be an integer in \[0, 16384\]"):
        open_source("0?width=-5")
    with pytest.raises(SourceError, match=r"parameter 'exposure'; valid parameters: width, height, fps"):
        open_source("0?exposure=3")
