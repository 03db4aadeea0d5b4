"""The demo conveyor: synthetic boards with template and truth, paced like a camera, parameters checked."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pcb_inspect.inspect.sources.base import SourceError
from pcb_inspect.inspect.sources.synthetic import SyntheticSource
from pcb_inspect.inspect.sources.table import open_source

FAST = "synthetic://?fps=0&size=256&boards=3"


def _frames(uri: str, n: int) -> list:
    with open_source(uri) as src:
        return [src.read() for _ in range(n)]


def test_frames_carry_image_template_truth_and_ids() -> None:
    src = open_source(FAST + "&defect_rate=0.5&seed=7")
    assert isinstance(src, SyntheticSource) and not src.live
    with src:
        frames = [src.read() for _ in range(24)]
    assert [f.index for f in frames] == list(range(24))
    assert frames[5].board_id == "syn-000005"
    for f in frames:
        assert f.image.shape == (256, 256) and f.image.dtype == np.uint8 and f.path is None
        assert f.template.shape == (256, 256) and f.template.dtype == np.uint8
        assert f.product in {"0", "1", "2"} and f.truth is not None
        assert f.template is src.board(int(f.product)).template  # shared, not copied
        assert not f.template.flags.writeable
        assert f.source == FAST + "&defect_rate=0.5&seed=7"
    defective = [f for f in frames if f.truth]
    assert 0 < len(defective) < len(frames)  # both kinds show up at rate 0.5
    for f in defective:  # truth boxes moved with the image stay inside it
        assert all(0 <= gt.box[0] < gt.box[2] <= 256 and 0 <= gt.box[1] < gt.box[3] <= 256 for gt in f.truth)


def test_image_is_the_moved_and_degraded_board() -> None:
    clean = _frames(FAST + "&defect_rate=0", 6)
    for f in clean:
        assert f.truth == []
        diff = np.abs(f.image.astype(int) - f.template.astype(int))
        assert 1 < diff.mean() < 60  # close to its template, but not pixel-identical (moved, noisy)
    other = [f for f in clean if f.product != clean[0].product]
    if other:  # a different design differs much more than the same one moved
        d_same = np.abs(clean[0].image.astype(int) - clean[0].template.astype(int)).mean()
        d_other = np.abs(clean[0].image.astype(int) - other[0].template.astype(int)).mean()
        assert d_other > d_same
    assert all(f.truth for f in _frames(FAST + "&defect_rate=1", 4))


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    a, b = _frames(FAST + "&seed=3", 3), _frames(FAST + "&seed=3", 3)
    c = _frames(FAST + "&seed=4", 3)
    assert all(np.array_equal(x.image, y.image) and x.truth == y.truth for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x.image, y.image) for x, y in zip(a, c, strict=True))


def test_paced_at_fps_without_bursts_after_a_late_reader() -> None:
    src = open_source("synthetic://?fps=20&size=256&boards=1")
    assert src.live
    with src:
        src.read()
        t0 = time.monotonic()
        for _ in range(6):
            src.read()
        elapsed = time.monotonic() - t0
        assert 0.25 < elapsed < 3.0  # 6 periods of 50 ms (the upper bound only catches a stuck pacer)
        time.sleep(0.3)  # the reader falls 6 frames behind
        src.read()  # one frame at once (the camera has one)...
        t1 = time.monotonic()
        for _ in range(3):
            src.read()
        assert time.monotonic() - t1 > 0.08  # ...then the normal pace again (>= 2 periods), no catch-up burst


def test_slow_camera_returns_none_on_timeout() -> None:
    with open_source("synthetic://?fps=0.5&size=256&boards=1", timeout_s=0.05) as src:
        assert src.read() is not None  # the first frame is due at open
        t0 = time.monotonic()
        assert src.read() is None
        assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize(("query", "message"), [
    ("fps=-1", r"fps=-1 must be a number in \[0, 1000\]"),
    ("defect_rate=1.5", r"defect_rate=1.5 must be a number in \[0, 1\]"),
    ("defect_rate=nan", r"defect_rate=nan must be a number in \[0, 1\]"),
    ("boards=0", r"boards=0 must be an integer in \[1, 10000\]"),
    ("size=100", r"size=100 must be an integer in \[192, 4096\]"),
    ("seed=x", r"seed=x must be an integer"),
    ("fps=", r"parameter fps is empty"),
    ("speed=3", r"unknown parameter 'speed'; valid parameters: fps, defect_rate, seed, boards, size"),
    ("fps=1&fps=2", r"parameter 'fps' given twice"),
])
def test_bad_parameters_are_refused_in_one_line(query: str, message: str) -> None:
    with pytest.raises(SourceError, match=message) as err:
        open_source(f"synthetic://?{query}")
    assert str(err.value).startswith("synthetic://") and "\n" not in str(err.value)


def test_nothing_may_stand_between_scheme_and_query() -> None:
    with pytest.raises(SourceError, match=r"unexpected 'boards' after synthetic://"):
        open_source("synthetic://boards?fps=1")
