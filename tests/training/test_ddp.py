"""Training is correct when launched by torchrun: two CPU processes (gloo) train one model together."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_torchrun_two_processes(synthetic_root: Path, tmp_path: Path) -> None:
    bindir = os.path.dirname(sys.executable)
    torchrun, exe = shutil.which("torchrun", path=bindir), shutil.which("pcb-inspect", path=bindir)
    if not (torchrun and exe):
        pytest.skip("torchrun or the pcb-inspect console script is not installed next to this Python")
    out = tmp_path / "ddp"
    cmd = [
        torchrun, "--standalone", "--nproc_per_node", "2", "--no-python", exe, "train", "--data",
        str(synthetic_root), "--out", str(out), "--epochs", "2", "--max-boards", "6", "--batch", "32",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    history = json.loads((out / "results.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert r.stdout.count("epoch 1: loss") == 1  # only rank 0 validates and reports
    assert (out / "best.pt").is_file()
