"""Hot model swap: the loop switches to a new model only once it loaded and passed its self-check; no frame is
lost or inspected twice, each inspection names the model that judged it, and a bad model leaves the old one
running."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from pcb_inspect.inspect.run import build_runtime
from pcb_inspect.inspect.runtime import RunConfig
from pcb_inspect.inspect.sinks.sqlite import ResultsDB
from pcb_inspect.models.registry import default_model_path


def _wait(predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _blind(tmp_path: Path) -> Path:
    """A model that loads, but whose proposal stage keeps no difference smaller than a million pixels."""
    from pcb_inspect.inspect.backends import OnnxRuntimeBackend

    proposals = OnnxRuntimeBackend(default_model_path("fp32")).contract.proposals
    return _model_with(tmp_path, "blind.onnx", proposals={**proposals, "min_area": 10**6})


def _model_with(tmp_path: Path, name: str, **contract: object) -> Path:
    onnx = pytest.importorskip("onnx")
    from pcb_inspect.models.contract import METADATA_KEY

    proto = onnx.load(str(default_model_path("fp32")))
    (entry,) = [p for p in proto.metadata_props if p.key == METADATA_KEY]
    entry.value = json.dumps({**json.loads(entry.value), **contract})
    out = tmp_path / name
    onnx.save(proto, str(out))
    return out


def test_swaps_to_a_good_model_and_refuses_bad_ones(tmp_path: Path) -> None:
    frames = 400
    config = RunConfig(source="synthetic://?fps=0&boards=4", station="swap", max_frames=frames, workers=1)
    runtime = build_runtime(config, tmp_path / "r.db", None, (10, 10))
    old_sha = runtime.inspector.backend.model_sha256
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model at all")
    blind = _blind(tmp_path)
    runtime.start()
    loop = threading.Thread(target=runtime.run)
    loop.start()
    try:
        _wait(lambda: runtime.stats.inspected >= 20)
        runtime.swap.request(default_model_path("fp32"))
        with pytest.raises(Exception, match="already loading"):
            runtime.swap.request(broken)
        _wait(lambda: runtime.swap.status()["state"] == "done")
        new_sha = runtime.status()["model_sha256"]
        assert new_sha != old_sha
        runtime.swap.request(broken)
        _wait(lambda: runtime.swap.status()["state"] == "failed")
        assert "broken.onnx" in runtime.swap.status()["error"]
        runtime.swap.request(blind)
        _wait(lambda: runtime.swap.status()["state"] == "failed")
        assert "self-check: no defect found" in runtime.swap.status()["error"]
        assert runtime.status()["model_sha256"] == new_sha  # the good model kept inspecting
    finally:
        loop.join(timeout=120)
    rows = ResultsDB(tmp_path / "r.db").recent(frames + 10)
    indices = sorted(r.frame_index for r in rows)
    assert indices == list(range(frames))  # every frame once: none lost, none inspected twice
    by_model = {sha: [r.frame_index for r in rows if r.model_sha256 == sha] for sha in (old_sha, new_sha)}
    assert by_model[old_sha] and by_model[new_sha]
    assert max(by_model[old_sha]) < min(by_model[new_sha])  # one switch, in frame order
    assert len(by_model[old_sha]) + len(by_model[new_sha]) == frames


def test_self_check_passes_the_shipped_models_and_refuses_a_blind_one(tmp_path: Path) -> None:
    from pcb_inspect.inspect.engine import Inspector
    from pcb_inspect.inspect.errors import ModelError
    from pcb_inspect.inspect.swap import self_check
    from pcb_inspect.models.registry import open_backend

    for precision in ("int8", "fp32"):
        self_check(Inspector(open_backend(default_model_path(precision))))
    blind = _blind(tmp_path)
    with pytest.raises(ModelError, match="self-check: no defect found on a board with"):
        self_check(Inspector(open_backend(blind)))


def test_sighup_reloads_the_model_behind_a_symlink(tmp_path: Path) -> None:
    """What `deploy activate` does: repoint current/ and send SIGHUP."""
    import os
    import signal
    import subprocess
    import sys

    current = tmp_path / "current.onnx"
    shutil.copy(default_model_path("int8"), tmp_path / "a.onnx")
    shutil.copy(default_model_path("fp32"), tmp_path / "b.onnx")
    current.symlink_to(tmp_path / "a.onnx")
    exe = os.path.join(os.path.dirname(sys.executable), "pcb-inspect")
    proc = subprocess.Popen([exe, "run", "--source", "synthetic://?fps=30&boards=4", "--model", str(current),
                             "--db", str(tmp_path / "r.db"), "--http", "off", "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        db = ResultsDB(tmp_path / "r.db")
        _wait(lambda: (tmp_path / "r.db").exists() and db.counts()["total"] >= 10)
        os.replace(tmp_path / "a.onnx", tmp_path / "a.old")  # the deploy tool's rename of the symlink
        tmp = tmp_path / "next.onnx"
        tmp.symlink_to(tmp_path / "b.onnx")
        os.replace(tmp, current)
        proc.send_signal(signal.SIGHUP)
        from pcb_inspect.inspect.backends import file_sha256

        b_sha = file_sha256(tmp_path / "b.onnx")
        _wait(lambda: any(r.model_sha256 == b_sha for r in db.recent(20)))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGHUP: loading the model again" in err and "model swapped" in out
