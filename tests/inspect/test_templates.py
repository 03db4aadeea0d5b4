"""TemplateStore: which template a frame gets, the errors when none fits, caching and pickling."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.errors import ConfigError, ImageError
from pcb_inspect.inspect.sources.base import Frame
from pcb_inspect.inspect.templates import TemplateStore


def _write(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((24, 32), value, np.uint8))
    return path


def _frame(**kw: object) -> Frame:
    return Frame(index=0, timestamp=0.0, source="test", **kw)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "templates"
    _write(d / "A100.png", 10)
    _write(d / "B200.png", 20)
    _write(d / "00041000.bmp", 30)
    (d / "README.txt").write_text("not a template")
    return d


def test_single_file_serves_every_frame(tmp_path: Path) -> None:
    store = TemplateStore(_write(tmp_path / "golden.png", 77))
    a = store.resolve(_frame(product="X"))
    b = store.resolve(_frame(board_id="whatever"))
    assert a.shape == (24, 32) and a.dtype == np.uint8 and int(a[0, 0]) == 77
    assert a is b  # decoded once, from the cache
    assert not a.flags.writeable


def test_precedence_frame_template_then_path_then_product_then_board_id(folder: Path, tmp_path: Path) -> None:
    store = TemplateStore(folder)
    own = np.full((8, 8), 5, np.uint8)
    other = _write(tmp_path / "other.png", 99)
    assert store.resolve(_frame(template=own, template_path=other, product="A100")) is own
    assert int(store.resolve(_frame(template_path=other, product="A100"))[0, 0]) == 99
    assert int(store.resolve(_frame(product="A100", board_id="B200"))[0, 0]) == 10
    assert int(store.resolve(_frame(product="nope", board_id="B200"))[0, 0]) == 20
    assert int(store.resolve(_frame(board_id="00041000"))[0, 0]) == 30
    assert store.keys() == ["00041000", "A100", "B200"]


def test_no_store_needs_frames_with_their_own_template(tmp_path: Path) -> None:
    store = TemplateStore(None)
    assert int(store.resolve(_frame(template_path=_write(tmp_path / "t.png", 3)))[0, 0]) == 3
    with pytest.raises(ConfigError, match="brings no template and no template file or folder was given"):
        store.resolve(_frame(board_id="b1"))


def test_missing_key_names_the_keys_tried_the_folder_and_some_that_exist(folder: Path) -> None:
    store = TemplateStore(folder)
    with pytest.raises(ConfigError) as err:
        store.resolve(_frame(product="C300", board_id="syn-000001"))
    msg = str(err.value)
    assert str(folder) in msg and "'C300' or 'syn-000001'" in msg and "A100, B200" in msg and "\n" not in msg


def test_many_keys_are_cut_short_in_the_message(tmp_path: Path) -> None:
    for i in range(9):
        _write(tmp_path / f"p{i}.png", i)
    with pytest.raises(ConfigError, match=r"p0, p1, p2, p3, p4, \.\.\. \(9 in all\)"):
        TemplateStore(tmp_path).resolve(_frame(product="zz"))


def test_template_added_while_running_is_found(folder: Path) -> None:
    store = TemplateStore(folder)
    _write(folder / "NEW1.png", 44)
    assert int(store.resolve(_frame(product="NEW1"))[0, 0]) == 44


def test_retaught_template_replaces_the_cached_one(tmp_path: Path) -> None:
    path = _write(tmp_path / "golden.png", 50)
    store = TemplateStore(path)
    assert int(store.resolve(_frame())[0, 0]) == 50
    _write(path, 60)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a clearly newer file
    assert int(store.resolve(_frame())[0, 0]) == 60


def test_cache_is_bounded(folder: Path) -> None:
    store = TemplateStore(folder, cache_size=2)
    for key in ("A100", "B200", "00041000", "A100"):
        store.resolve(_frame(product=key))
    assert len(store._cache) == 2


def test_bad_paths_and_files(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere: template file or folder not found"):
        TemplateStore(tmp_path / "nothere")
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"t\.txt: template is not an image file"):
        TemplateStore(tmp_path / "t.txt")
    _write(folder / "A100.jpg", 1)
    with pytest.raises(ConfigError, match=r"two templates for key 'A100'"):
        TemplateStore(folder)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageError, match="broken.png"):
        TemplateStore(broken).resolve(_frame())
    with pytest.raises(ImageError, match=r"gone\.png: template file not found"):
        TemplateStore(None).resolve(_frame(template_path=tmp_path / "gone.png"))
    with pytest.raises(ImageError, match="template must be 2-D uint8"):
        TemplateStore(None).resolve(_frame(template=np.zeros((4, 4, 3), np.uint8)))


def test_pickles_without_its_cache(folder: Path) -> None:
    big = folder / "BIG.png"
    assert cv2.imwrite(str(big), np.random.default_rng(0).integers(0, 256, (200, 200), np.uint8))
    store = TemplateStore(folder, cache_size=8)
    store.resolve(_frame(product="A100"))
    store.resolve(_frame(product="BIG"))
    data = pickle.dumps(store)
    assert len(data) < 4000  # paths and keys only: the 40 kB of decoded pixels stay behind
    copy = pickle.loads(data)
    assert copy.keys() == store.keys() and copy.cache_size == 8 and len(copy._cache) == 0
    assert int(copy.resolve(_frame(product="B200"))[0, 0]) == 20
