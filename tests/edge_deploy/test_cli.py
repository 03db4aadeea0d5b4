"""The deploy verbs through a real process: bad input is one line and exit 2; the main CLI once wired."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BAD_INPUT = [
    (["install", "{tmp}/missing.tar.gz", "--root", "{tmp}/box"], "bundle file not found"),
    (["activate", "../../etc", "--root", "{tmp}/box"], "version '../../etc'"),
    (["activate", "1.0.0", "--root", "{tmp}/box"], "release 1.0.0 is not installed"),
    (["activate", "1.0.0", "--root", "{tmp}/box", "--reload", "kill"], "--reload 'kill'"),
    (["activate", "1.0.0", "--root", "{tmp}/box", "--health-url", "ftp://x"], "--health-url 'ftp://x'"),
    (["rollback", "--root", "{tmp}/box"], "no previous release"),
    (["prune", "--root", "{tmp}/box", "--keep", "-1"], "--keep -1"),
    (["bundle", "--model", "{tmp}/m.onnx", "--version", "1", "--out", "{tmp}/b.tar.gz"], "--model"),
    (
        [
            "bundle",
            "--model",
            "{model}",
            "--version",
            "1",
            "--out",
            "{tmp}/b.tar.gz",
            "--sign",
            "{tmp}/nokey",
        ],
        "--sign",
    ),
    (["health", "--url", "http://127.0.0.1:9", "--root", "{tmp}/box"], "no active release"),
    (["service", "--root", "{tmp}/box", "--user", "root", "--print"], "unprivileged"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_INPUT, ids=[" ".join(a[:1] + [e]) for a, e in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(
    args, expected, tmp_path: Path, run_deploy, shipped_model: Path
) -> None:
    r = run_deploy(*[a.format(tmp=tmp_path, model=shipped_model) for a in args])
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("pcb-inspect deploy: error: "), r.stderr
    assert expected in r.stderr


def test_status_json_and_text(bundles, tmp_path: Path, run_deploy) -> None:
    box = tmp_path / "box"
    assert run_deploy("install", bundles["v1"], "--root", box).returncode == 0
    assert run_deploy("activate", "1.0.0", "--root", box).returncode == 0
    r = run_deploy("status", "--root", box)
    assert r.returncode == 0 and "active    1.0.0" in r.stdout and " * 1.0.0" in r.stdout
    r = run_deploy("status", "--root", box, "--json")
    assert '"active": "1.0.0"' in r.stdout


def test_keygen_and_signed_bundle(tmp_path: Path, run_deploy, shipped_model: Path) -> None:
    r = run_deploy("keygen", "--out", tmp_path / "plant")
    assert r.returncode == 0 and (tmp_path / "plant.key").stat().st_mode & 0o077 == 0
    r = run_deploy(
        "bundle",
        "--model",
        shipped_model,
        "--version",
        "7.0",
        "--out",
        tmp_path / "b.tar.gz",
        "--sign",
        tmp_path / "plant.key",
    )
    assert r.returncode == 0 and "(signed, target cpu, 1 file," in r.stdout
    assert run_deploy("keygen", "--out", tmp_path / "plant").returncode == 2  # never overwrites a key


def test_main_cli_has_the_deploy_verb() -> None:
    exe = shutil.which("pcb-inspect", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the pcb-inspect console script is not installed")
    r = subprocess.run([exe, "deploy", "--help"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and "invalid choice: 'deploy'" in r.stderr:
        pytest.skip("the deploy verb is not wired into inspect/cli.py yet (add_deploy_parser)")
    assert r.returncode == 0 and "rollback" in r.stdout
