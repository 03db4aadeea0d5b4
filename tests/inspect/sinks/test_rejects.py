"""Reject images: what is saved, by date; retention by count and bytes; a full disk; find by id."""

from __future__ import annotations

import errno
import os
import time

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.sinks import rejects
from pcb_inspect.inspect.sinks.base import Result
from pcb_inspect.inspect.sinks.rejects import RejectImageSink

FAST = dict(retry_s=0.01, retry_max_s=0.05)


def board(seed: int = 0, shape=(120, 160)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def run(sink: RejectImageSink, results) -> dict:
    sink.start()
    for r in results:
        sink.submit(r)
    assert sink.flush(10.0)
    deadline = time.monotonic() + 5
    while sink.status()["state"] == "starting" and time.monotonic() < deadline:  # opened (index built)
        time.sleep(0.005)
    return sink.status()


def files(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_saves_raw_and_annotated_for_boards_that_did_not_pass(tmp_path, make_inspection) -> None:
    sink = RejectImageSink(tmp_path / "rejects", **FAST)
    verdicts = ["FAIL", "REVIEW", "ERROR", "PASS"]
    fail, review, error, passed = (make_inspection(v, index=k) for k, v in enumerate(verdicts))
    no_image = make_inspection("FAIL", index=5)
    image = board()
    s = run(sink, [Result(fail, image), Result(review, image), Result(error, image), Result(passed, image),
                   Result(no_image)])
    assert (s["saved"], s["no_image"], s["written"], s["errors"]) == (3, 1, 5, 0)
    day = time.strftime("%Y-%m-%d", time.localtime(fail.time))
    for item in (fail, review, error):
        found = sink.find(item.id)
        assert found == {"raw": tmp_path / "rejects" / day / f"{item.id}_raw.png",
                         "annotated": tmp_path / "rejects" / day / f"{item.id}_annotated.jpg"}
        assert np.array_equal(cv2.imread(str(found["raw"]), cv2.IMREAD_UNCHANGED), image)  # lossless
        annotated = cv2.imread(str(found["annotated"]))
        assert annotated.ndim == 3 and annotated.shape[1] == image.shape[1]
    assert sink.find(passed.id) == {} and sink.find(no_image.id) == {}
    assert not [n for n in files(tmp_path / "rejects") if n.endswith(".tmp")]
    sink.close(1.0)


def test_retention_by_count_deletes_the_oldest(tmp_path, make_inspection) -> None:
    sink = RejectImageSink(tmp_path / "rejects", keep_count=3, **FAST)
    items = [make_inspection(index=k) for k in range(5)]
    s = run(sink, [Result(i, board(k)) for k, i in enumerate(items)])
    assert (s["kept"], s["deleted"]) == (3, 2)
    assert [bool(sink.find(i.id)) for i in items] == [False, False, True, True, True]
    assert len(files(tmp_path / "rejects")) == 6
    sink.close(1.0)


def test_retention_by_bytes(tmp_path, make_inspection) -> None:
    probe = RejectImageSink(tmp_path / "probe", **FAST)
    pair = run(probe, [Result(make_inspection(), board(0))])["kept_bytes"]
    probe.close(1.0)
    sink = RejectImageSink(tmp_path / "rejects", keep_bytes=int(2.5 * pair), **FAST)
    items = [make_inspection(index=k) for k in range(6)]
    s = run(sink, [Result(i, board(k)) for k, i in enumerate(items)])
    assert s["kept"] == 2 and s["kept_bytes"] <= 2.5 * pair
    on_disk = sum(p.stat().st_size for p in (tmp_path / "rejects").rglob("*") if p.is_file())
    assert on_disk == s["kept_bytes"]
    assert [bool(sink.find(i.id)) for i in items] == [False] * 4 + [True] * 2
    sink.close(1.0)


def test_start_rescans_the_tree_oldest_first_and_removes_stray_temporaries(tmp_path, make_inspection) -> None:
    first = RejectImageSink(tmp_path / "rejects", **FAST)
    items = [make_inspection(index=k) for k in range(4)]
    run(first, [Result(i, board(k)) for k, i in enumerate(items)])
    first.close(1.0)
    for k, item in enumerate(items):  # make the on-disk age order the reverse of the writing order
        for path in first.find(item.id).values():
            os.utime(path, (1_000_000 - k, 1_000_000 - k))
    stray = next((tmp_path / "rejects").iterdir()) / f".{items[0].id}_raw.png.123.tmp"
    stray.write_bytes(b"half an image")
    again = RejectImageSink(tmp_path / "rejects", keep_count=2, **FAST)
    s = run(again, [])
    assert (s["kept"], s["deleted"]) == (2, 2) and not stray.exists()
    assert [bool(again.find(i.id)) for i in items] == [True, True, False, False]
    again.close(1.0)


def test_a_full_disk_is_counted_and_skipped_not_raised(tmp_path, make_inspection, monkeypatch) -> None:
    sink = RejectImageSink(tmp_path / "rejects", **FAST)
    real = rejects._write_atomic
    calls = []

    def second_file_fails(path, data):  # the raw picture lands, the annotated one finds the disk full
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(rejects, "_write_atomic", second_file_fails)
    full = make_inspection(index=0)
    s = run(sink, [Result(full, board())])
    assert (s["disk_full"], s["skipped"], s["written"], s["saved"], s["state"]) == (1, 1, 0, 0, "ok")
    assert "disk full" in s["last_error"] and "\n" not in s["last_error"]
    assert sink.find(full.id) == {}  # a pair or nothing: the raw picture was removed again
    monkeypatch.setattr(rejects, "_write_atomic", lambda path, data: (_ for _ in ()).throw(
        PermissionError(errno.EACCES, "Permission denied", str(path))))
    s = run(sink, [Result(make_inspection(index=1), board())])
    assert (s["write_errors"], s["skipped"]) == (1, 2) and "Permission denied" in s["last_error"]
    monkeypatch.setattr(rejects, "_write_atomic", real)
    ok = make_inspection(index=2)
    s = run(sink, [Result(ok, board())])
    assert s["saved"] == 1 and set(sink.find(ok.id)) == {"raw", "annotated"}
    sink.close(1.0)


def test_find_refuses_anything_but_an_id(tmp_path) -> None:
    sink = RejectImageSink(tmp_path / "rejects")
    for bad in ["../../etc/passwd", "A" * 32, "0" * 31, "0" * 32 + "/x", "", None]:
        with pytest.raises(ConfigError, match="32 lowercase hex"):
            sink.find(bad)
    assert sink.find("0" * 32) == {}


def test_bad_settings_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        RejectImageSink(tmp_path / "no" / "such" / "rejects")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="rejects folder"):
        RejectImageSink(tmp_path / "file")
    with pytest.raises(ConfigError, match="keep_count"):
        RejectImageSink(tmp_path / "r", keep_count=0)
