"""The package layout: `inspect` never shadows the standard library, and the edge runtime never imports torch."""

from __future__ import annotations

import subprocess
import sys

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_stdlib_inspect_wins_from_repo_root() -> None:
    r = _run("import inspect, sys; print(inspect.__file__); assert hasattr(inspect, 'signature')")
    assert r.returncode == 0, r.stderr
    assert str(REPO / "inspect") not in r.stdout


def test_inspect_and_torch_import_together_from_repo_root() -> None:
    r = _run("import inspect, torch; print(torch.__version__)")
    assert r.returncode == 0, r.stderr


def test_edge_runtime_does_not_import_torch() -> None:
    code = (
        "import sys, pcb_inspect.inspect.engine, pcb_inspect.inspect.backends, pcb_inspect.inspect.cli, "
        "pcb_inspect.inspect.demo, pcb_inspect.inspect.bench, pcb_inspect.models.registry, "
        "pcb_inspect.models.contract; "
        "bad = [m for m in ('torch', 'torchvision', 'albumentations') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = _run(code)
    assert r.returncode == 0, r.stdout + r.stderr


def test_subpackages_live_in_one_namespace() -> None:
    r = _run("import pcb_inspect.inspect.records as r, pcb_inspect.inspect.deeppcb, pcb_inspect.models.contract")
    assert r.returncode == 0, r.stderr
