"""Shared fixtures: the real DeepPCB sample from ../shared (skipped with a reason when absent) and small
synthetic datasets the project makes itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DEEPPCB = Path(os.environ.get("PCB_INSPECT_SHARED", REPO.parent / "shared")) / "datasets" / "deeppcb"


@pytest.fixture(scope="session")
def deeppcb_root() -> Path:
    """Real DeepPCB trainval in its native layout; tests that need it skip where ../shared is absent."""
    if not (SHARED_DEEPPCB / "PCBData" / "trainval.txt").is_file():
        pytest.skip(f"needs the DeepPCB sample at {SHARED_DEEPPCB} (../shared/datasets/deeppcb); not present here")
    return SHARED_DEEPPCB


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dozen synthetic boards in the DeepPCB layout, made once per test session."""
    from pcb_inspect.inspect.synthetic import write_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, 12, seed=3, group_size=4)
    return root


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    from pcb_inspect.models.registry import default_model_path

    return default_model_path()
