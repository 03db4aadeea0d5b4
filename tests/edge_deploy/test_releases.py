"""Releases on a box: activate, rollback, status, prune, and kill -9 at any point of an install."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pcb_inspect.edge_deploy.activate import activate, rollback
from pcb_inspect.edge_deploy.errors import BundleRefused, DeployError
from pcb_inspect.edge_deploy.releases import install, prune, status
from pcb_inspect.edge_deploy.reload import parse_reload

NONE = parse_reload("none")


@pytest.fixture
def box(bundles: dict[str, Path], keypair, tmp_path: Path, new_root):  # noqa: ANN201
    root = new_root(tmp_path / "box", keypair[1])
    for name in ("v1", "v2", "v3"):
        install(root, bundles[name])
    return root


def test_activate_rollback_status(box) -> None:
    assert activate(box, "1.0.0", NONE).ok
    assert (box.pointer("current"), box.pointer("previous")) == ("1.0.0", None)
    assert (box.path / "current" / "model.onnx").is_file()
    assert os.readlink(box.path / "current") == "releases/1.0.0"  # relative: the root can move
    r = activate(box, "2.0.0", NONE)
    assert r.ok and "previous 1.0.0" in r.message
    assert (box.pointer("current"), box.pointer("previous")) == ("2.0.0", "1.0.0")
    assert activate(box, "2.0.0", NONE).message == "2.0.0 is already active"
    assert box.pointer("previous") == "1.0.0"  # re-activating does not lose the way back
    assert rollback(box, NONE).active == "1.0.0"
    assert (box.pointer("current"), box.pointer("previous")) == ("1.0.0", "2.0.0")
    s = status(box)
    assert s["active"] == "1.0.0" and s["previous"] == "2.0.0"
    assert [r["version"] for r in s["releases"]] == ["1.0.0", "2.0.0", "3.0.0"]
    assert all(r["bytes"] > 100_000 and r["signed"] for r in s["releases"])
    assert s["bytes"]["releases"] == sum(r["bytes"] for r in s["releases"])
    with pytest.raises(DeployError, match="not installed"):
        activate(box, "9.9.9", NONE)


def test_rollback_needs_a_previous_release(box) -> None:
    with pytest.raises(DeployError, match="no previous release"):
        rollback(box, NONE)
    activate(box, "1.0.0", NONE)
    with pytest.raises(DeployError, match="no previous release"):
        rollback(box, NONE)


def test_prune_keeps_active_and_previous(box, bundles, tmp_path: Path) -> None:
    activate(box, "1.0.0", NONE)
    activate(box, "2.0.0", NONE)  # previous 1.0.0 (the oldest)
    assert prune(box, 0) == ["3.0.0"]
    assert box.versions() == ["1.0.0", "2.0.0"]
    assert prune(box, 0) == []
    install(box, bundles["v3"])
    assert prune(box, 1) == []  # 3.0.0 is the newest
    assert list(box.trash.iterdir()) == []


def test_activate_refuses_a_damaged_release(box) -> None:
    activate(box, "1.0.0", NONE)
    model = box.release("2.0.0") / "model.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    with pytest.raises(BundleRefused, match="model.onnx checksum mismatch"):
        activate(box, "2.0.0", NONE)
    assert box.pointer("current") == "1.0.0"


# Runs an install in a child process that stops (and is killed) at a chosen point.
KILL_SCRIPT = """
import sys, time, tarfile
from pathlib import Path
import pcb_inspect.edge_deploy.releases as releases
import pcb_inspect.edge_deploy.bundle as bundle
stage, marker, root, bundle_path = sys.argv[1:5]

def stop_here():
    Path(marker).write_text("ready")
    time.sleep(60)

if stage == "extracting":  # partway through writing members into .incoming
    original = tarfile.TarFile._extract_member  # every Python 3.11 has it (_extract_one came in 3.11.4)
    count = [0]
    def slow(self, *a, **k):
        original(self, *a, **k)
        count[0] += 1
        if count[0] == 2:
            stop_here()
    tarfile.TarFile._extract_member = slow
elif stage == "verified":  # everything checked and synced, just before the rename
    original_rename = releases.os.rename
    def rename(a, b):
        stop_here()
        original_rename(a, b)
    releases.os.rename = rename
elif stage == "switching":  # activate: previous moved, current not yet
    original_set = releases.Root.set_pointer
    def set_pointer(self, name, version):
        if name == "current":
            stop_here()
        original_set(self, name, version)
    releases.Root.set_pointer = set_pointer
root = releases.Root(Path(root))
if stage == "switching":
    from pcb_inspect.edge_deploy.activate import activate
    from pcb_inspect.edge_deploy.reload import parse_reload
    activate(root, bundle_path, parse_reload("none"))
else:
    releases.install(root, Path(bundle_path))
"""


def _run_and_kill(stage: str, tmp_path: Path, root: Path, arg: str) -> None:
    marker = tmp_path / f"{stage}.marker"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, stage, str(marker), str(root), arg])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, f"install finished before reaching {stage}"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("stage", ["extracting", "verified"])
def test_kill_9_during_install(
    stage: str, box, bundles, tmp_path: Path, digest, run_deploy, keypair, new_root
) -> None:
    activate(box, "1.0.0", NONE)
    fresh = new_root(tmp_path / "fresh", keypair[1])  # a root where v1 is active and v2 is not installed yet
    install(fresh, bundles["v1"])
    activate(fresh, "1.0.0", NONE)
    releases_before = digest(fresh.releases)
    _run_and_kill(stage, tmp_path, fresh.path, str(bundles["v2"]))
    assert fresh.pointer("current") == "1.0.0"  # the active release still runs
    assert digest(fresh.releases) == releases_before  # no half-made release among the real ones
    assert list(fresh.incoming.iterdir()), "the killed install left its temporary folder"
    assert status(fresh)["incomplete"]
    r = run_deploy("install", bundles["v2"], "--root", fresh.path)
    assert r.returncode == 0, r.stderr
    assert "removed leftovers" in r.stdout and "installed 2.0.0" in r.stdout
    assert list(fresh.incoming.iterdir()) == [] and fresh.verify("2.0.0")


def test_kill_9_during_activate(box, tmp_path: Path) -> None:
    activate(box, "1.0.0", NONE)
    _run_and_kill("switching", tmp_path, box.path, "2.0.0")
    assert box.pointer("current") == "1.0.0"  # killed between the two renames: the old release is current
    assert activate(box, "2.0.0", NONE).ok  # the same command again completes the switch
    assert (box.pointer("current"), box.pointer("previous")) == ("2.0.0", "1.0.0")


def test_concurrent_deploy_commands_wait_for_the_lock(box) -> None:
    with box.locked():
        with pytest.raises(DeployError, match="another deploy command holds it"):
            with box.locked(wait_s=0.2):
                pass
