"""The Ansible fleet rollout, run for real with ansible-core against local deploy roots (connection local).

Each "box" is a deploy root with 1.0.0 active and a stand-in service; the playbook rolls 2.0.0 out canary
first. A canary that answers unhealthy is rolled back and the rollout stops before any other box is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pcb_inspect.edge_deploy.activate import activate
from pcb_inspect.edge_deploy.releases import install
from pcb_inspect.edge_deploy.reload import parse_reload

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "edge_deploy" / "ansible"
BIN = Path(sys.executable).parent
PLAYBOOK = shutil.which("ansible-playbook", path=str(BIN)) or shutil.which("ansible-playbook")
LINT = shutil.which("ansible-lint", path=str(BIN)) or shutil.which("ansible-lint")
needs_ansible = pytest.mark.skipif(PLAYBOOK is None, reason="needs ansible-core (pip install ansible-core)")


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(
        os.environ,
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )


def _inventory(tmp_path: Path, boxes: dict[str, tuple[Path, str]]) -> Path:
    inventory = {
        "all": {
            "children": {
                "inspection_boxes": {
                    "hosts": {
                        name: {"pcb_inspect_root": str(root), "pcb_inspect_health_url": url}
                        for name, (root, url) in boxes.items()
                    },
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        "pcb_inspect_cli": [sys.executable, "-m", "pcb_inspect.inspect.cli"],
                        "pcb_inspect_reload": "none",
                        "pcb_inspect_health_timeout": 3,
                    },
                }
            }
        }
    }
    path = tmp_path / "inventory.json"  # JSON is YAML
    path.write_text(json.dumps(inventory))
    return path


def _playbook(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PLAYBOOK, *args], cwd=ANSIBLE_DIR, capture_output=True, text=True, timeout=300, env=_env(tmp_path)
    )


@pytest.mark.skipif(LINT is None, reason="needs ansible-lint (pip install ansible-lint)")
def test_ansible_lint_clean(tmp_path: Path) -> None:
    r = subprocess.run(
        [LINT, "--offline", "--nocolor"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(tmp_path),
    )
    assert r.returncode == 0, r.stdout + r.stderr


@needs_ansible
def test_rollout_stops_at_an_unhealthy_canary_then_completes(
    bundles, keypair, tmp_path: Path, new_root, standin
) -> None:
    boxes, services = {}, {}
    for name in ("box1", "box2", "box3", "box4"):
        root = new_root(tmp_path / name, keypair[1])
        install(root, bundles["v1"])
        activate(root, "1.0.0", parse_reload("none"))
        services[name] = standin(root.path, "unhealthy" if name == "box1" else "healthy")
        boxes[name] = (root, services[name].url)
    inventory = _inventory(tmp_path, {n: (r.path, u) for n, (r, u) in boxes.items()})

    r = _playbook(tmp_path, "-i", str(inventory), "rollout.yml", "-e", f"pcb_inspect_bundle={bundles['v2']}")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "box1 failed the update, the rollout stops" in out and "rolled back to 1.0.0" in out, out
    box1 = boxes["box1"][0]
    assert (box1.pointer("current"), box1.pointer("previous")) == ("1.0.0", None)  # rolled back
    assert box1.versions() == ["1.0.0", "2.0.0"]  # installed, kept for a look, not active
    for name in ("box2", "box3", "box4"):  # never touched
        root = boxes[name][0]
        assert root.versions() == ["1.0.0"] and root.pointer("current") == "1.0.0", name
        assert not (root.path / "bundles").exists(), name
    assert "box2" not in out

    services["box1"].mode = "healthy"  # the cause is fixed: the same rollout goes through, batches 1, 1, 2
    r = _playbook(tmp_path, "-i", str(inventory), "rollout.yml", "-e", f"pcb_inspect_bundle={bundles['v2']}")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for name, (root, _) in boxes.items():
        assert (root.pointer("current"), root.pointer("previous")) == ("2.0.0", "1.0.0"), name
        assert list((root.path / "bundles").iterdir()) == [], name  # the copied bundle is removed
    assert "box1" in out and out.index("box1") < out.index("box2") < out.index("box3")


@needs_ansible
def test_provision_playbook_check_mode_runs_provision_dry_run(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "inspection_boxes": {
                            "hosts": {
                                "box": {
                                    "ansible_connection": "local",
                                    "ansible_python_interpreter": sys.executable,
                                    "pcb_inspect_root": str(tmp_path / "opt"),
                                    "pcb_inspect_box_platform": "cpu",
                                    "pcb_inspect_box_user": "pcbtest",
                                }
                            }
                        }
                    }
                }
            }
        )
    )
    r = _playbook(tmp_path, "-i", str(inventory), "provision.yml", "--check", "-v")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "DRY-RUN: useradd" in out and f"-m venv --system-site-packages {tmp_path}/opt/venv" in out, out
    assert not (tmp_path / "opt").exists()
