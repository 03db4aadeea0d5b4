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


def test_the_cpu_gets_the_int8_default_and_gpus_the_fp32_one(monkeypatch) -> None:  # noqa: ANN001
    """INT8 where onnxruntime's CPU provider classifies; FP32 for GPU providers and native TensorRT (they build
    their own reduced precision from FP32), and for a backend that cannot run here (it must say why itself)."""
    from pcb_inspect.inspect import backends

    monkeypatch.setattr(backends, "available_ort_providers", lambda: ["CPUExecutionProvider"])
    assert resolve_model(None) == default_model_path("int8")
    assert resolve_model(None, "onnxruntime-cpu").name == "pcb_default_int8.onnx"
    assert resolve_model(None, "tensorrt") == default_model_path("fp32")
    assert resolve_model(None, "onnxruntime-cuda") == default_model_path("fp32")  # not usable here: FP32
    monkeypatch.setattr(backends, "available_ort_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert resolve_model(None) == default_model_path("fp32")  # auto means CUDA on this machine
    int8 = open_backend(None, backend="onnxruntime-cpu")
    assert int8.contract.metrics["int8"]["heldout_f_score"] > 0.9
    assert int8.contract.metrics["heldout"]["clean"]["f_score"] > 0.9  # its own, not its FP32 parent's
    with pytest.raises(ModelError, match="precision 'fp16'"):
        default_model_path("fp16")


def test_an_install_without_the_int8_file_runs_fp32(monkeypatch) -> None:  # noqa: ANN001
    from pcb_inspect.models import registry

    real = registry.default_model_path

    def fp32_only(precision: str = "fp32") -> Path:
        if precision == "int8":
            raise ModelError("missing")
        return real(precision)

    monkeypatch.setattr(registry, "default_model_path", fp32_only)
    assert registry.resolve_model(None, "onnxruntime-cpu") == real("fp32")
