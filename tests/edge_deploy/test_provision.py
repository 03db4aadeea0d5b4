"""provision.sh: shellcheck clean, and its --dry-run prints every action for each kind of box."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "edge_deploy" / "provision.sh"
L4T = "# R{major} (release), REVISION: {rev}, GCID: 1, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 2025\n"


def provision(*args: str, l4t: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PCB_INSPECT_L4T_FILE=str(l4t or "/nonexistent/nv_tegra_release"))
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck (Debian package shellcheck)")
def test_shellcheck_clean() -> None:
    r = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout


def test_dry_run_cpu_box(tmp_path: Path) -> None:
    root = tmp_path / "opt"
    pub = tmp_path / "signer.pub"
    pub.write_text("key")
    r = provision(
        "--dry-run",
        "--platform",
        "cpu",
        "--root",
        str(root),
        "--user",
        "pcbtest",
        "--pubkey",
        str(pub),
        "--runtime",
        "/srv/wheels/pcb_inspect-0.1.0-py3-none-any.whl",
        "--pip-args",
        "--no-index --find-links /srv/wheels",
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for action in (
        "DRY-RUN: useradd --system --user-group",
        f"DRY-RUN: install -d -m 0750 -o pcbtest -g pcbtest {root}/data",
        f"DRY-RUN: install -d -m 0750 -o pcbtest -g pcbtest {root}/engine-cache",
        f"DRY-RUN: install -m 0644 -o root -g root {pub} {root}/keys/signer.pub",
        f"-m venv --system-site-packages {root}/venv",
        "-m pip install --quiet --no-index --find-links /srv/wheels "
        "/srv/wheels/pcb_inspect-0.1.0-py3-none-any.whl",
        f"DRY-RUN: {root}/venv/bin/pcb-inspect deploy service --root {root} --user pcbtest --install",
    ):
        assert action in out, f"{action!r} not in:\n{out}"
    assert "torch" not in out and "onnxruntime-gpu" not in out
    assert not root.exists()  # a dry run changes nothing


def test_dry_run_gpu_boxes(tmp_path: Path) -> None:
    r = provision("--dry-run", "--platform", "cuda", "--root", str(tmp_path / "opt"), "--no-service")
    assert r.returncode == 0, r.stderr
    assert "pip uninstall --quiet -y onnxruntime" in r.stdout and "--no-deps onnxruntime-gpu" in r.stdout
    l4t = tmp_path / "nv_tegra_release"
    l4t.write_text(L4T.format(major=38, rev="2.0"))
    r = provision("--dry-run", "--root", str(tmp_path / "opt"), l4t=l4t)
    assert r.returncode == 0, r.stderr
    assert "platform jetson" in r.stdout and "L4T R38.2.0" in r.stdout
    assert "python3-libnvinfer" in r.stdout and "pip uninstall --quiet -y onnxruntime" in r.stdout
    assert "onnxruntime-gpu" not in r.stdout  # JetPack's own, from the system site-packages


def test_unsupported_jetpack_refused_with_the_table(tmp_path: Path) -> None:
    l4t = tmp_path / "nv_tegra_release"
    l4t.write_text(L4T.format(major=36, rev="4.3"))
    r = provision("--dry-run", "--root", str(tmp_path / "opt"), l4t=l4t)
    assert r.returncode == 2
    assert "L4T R36 is not supported" in r.stderr and "L4T R38  JetPack 7.x" in r.stderr
    r = provision("--dry-run", "--allow-unsupported", "--root", str(tmp_path / "opt"), l4t=l4t)
    assert r.returncode == 0 and "warning: L4T R36 is not supported" in r.stdout
    r = provision("--list-supported")
    assert r.returncode == 0 and "x86_64" in r.stdout


def test_bad_options_and_not_root() -> None:
    assert "absolute path" in provision("--dry-run", "--root", "relative").stderr
    assert "unprivileged user" in provision("--dry-run", "--user", "root").stderr
    assert "unknown option --frobnicate" in provision("--frobnicate").stderr
    if os.geteuid() != 0:
        assert "run as root" in provision("--root", "/opt/x").stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="making folders owned by another user needs root")
def test_second_run_changes_nothing_already_done(tmp_path: Path) -> None:
    root = tmp_path / "opt"
    for sub, mode, owner in (
        ("", 0o755, "root"),
        ("releases", 0o755, "root"),
        ("keys", 0o755, "root"),
        ("data", 0o750, "daemon"),
        ("engine-cache", 0o750, "daemon"),
    ):
        d = root / sub
        d.mkdir(exist_ok=True)
        d.chmod(mode)
        shutil.chown(d, owner, owner)
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "venv" / "bin" / "python").symlink_to(shutil.which("python3"))
    (root / "venv" / "pyvenv.cfg").write_text("include-system-site-packages = true\n")
    r = provision("--dry-run", "--platform", "cpu", "--root", str(root), "--user", "daemon")
    assert r.returncode == 0, r.stderr
    assert "user daemon exists" in r.stdout and "venv" in r.stdout
    assert "install -d" not in r.stdout and "useradd" not in r.stdout and "-m venv" not in r.stdout
