from __future__ import annotations

from pathlib import Path

import pytest

from pcb_inspect.inspect.errors import ModelError
from pcb_inspect.models.registry import default_model_path, open_backend, resolve_model


def test_shipped_model_loads_with_its_contract() -> None:
    backend = open_backend(None)
    assert backend.contract.training_data["val_groups"]
    assert backend.contract.metrics["heldout"]["clean"]["f_score"] > 0.9
    assert backend.model_sha256 and default_model_path().stat().st_size < 10_000_000


def test_missing_and_unknown_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        resolve_model(tmp_path / "nope.onnx")
    weird = tmp_path / "model.tflite"
    weird.write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown model format '.tflite'"):
        open_backend(weird)


def test_pt_checkpoint_refuses_an_onnxruntime_backend(tmp_path: Path) -> None:
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(ModelError, match="runs .onnx models; a .pt checkpoint runs on torch"):
        open_backend(ckpt, backend="onnxruntime-cuda")
