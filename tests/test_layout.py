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
        "pcb_inspect.models.contract, pcb_inspect.inspect.run, pcb_inspect.inspect.runtime, "
        "pcb_inspect.inspect.workers, pcb_inspect.inspect.sources.table, pcb_inspect.inspect.sinks.sqlite, "
        "pcb_inspect.inspect.sinks.rejects, pcb_inspect.inspect.server, pcb_inspect.inspect.extensions, "
        "pcb_inspect.inspect.swap, pcb_inspect.edge_deploy.cli, pcb_inspect.edge_deploy.releases; "
        "from pcb_inspect.inspect import extensions; extensions.modules(); "
        "bad = [m for m in ('torch', 'torchvision', 'albumentations', 'matplotlib') if m in sys.modules]; "
        "bad += [m for m in sys.modules if m.startswith('pcb_inspect.training')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = _run(code)
    assert r.returncode == 0, r.stdout + r.stderr


def test_records_errors_and_contract_import_nothing_from_the_engine() -> None:
    code = (
        "import sys, pcb_inspect.inspect.records, pcb_inspect.inspect.errors, pcb_inspect.models.contract; "
        "mods = [m for m in sys.modules if m.startswith('pcb_inspect.')]; "
        "extra = set(mods) - {'pcb_inspect.inspect.records', 'pcb_inspect.inspect.errors', "
        "'pcb_inspect.models.contract', 'pcb_inspect.inspect', 'pcb_inspect.models'}; "
        "print(sorted(extra)); sys.exit(1 if extra else 0)"
    )
    r = _run(code)
    assert r.returncode == 0, r.stdout + r.stderr


def test_subpackages_live_in_one_namespace() -> None:
    r = _run("import pcb_inspect.inspect.records as r, pcb_inspect.inspect.deeppcb, pcb_inspect.models.contract")
    assert r.returncode == 0, r.stderr


def test_line_side_source_never_names_training_code() -> None:
    """inspect/ and edge_deploy/ run on the box: only the CLI's verb table reaches training verbs, when called."""
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for folder in ("inspect", "edge_deploy")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != REPO / "inspect" / "cli.py"
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if "pcb_inspect.training" in line
    ]
    assert not offenders, offenders
