"""The INT8 path: a quantized model carries the contract, and the gate refuses one that lost accuracy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pcb_inspect.inspect.backends import OnnxRuntimeBackend
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.training import quantize


def test_int8_model_is_written_with_its_contract(shipped_model: Path, synthetic_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    report = quantize.quantize_int8(shipped_model, out, synthetic_root, calib_boards=4, max_drop_points=100)
    assert report.written and out.is_file()
    int8, fp32 = OnnxRuntimeBackend(out), OnnxRuntimeBackend(shipped_model)
    # the same contract, but its own metrics: the gate's result and where it came from, not the parent's
    assert replace(int8.contract, metrics={}) == replace(fp32.contract, metrics={})
    gate = int8.contract.metrics["int8"]
    assert gate["fp32_sha256"] == fp32.model_sha256 and gate["heldout_f_score"] == report.int8_f_score
    assert "heldout" not in int8.contract.metrics
    assert any(n.op_type == "QuantizeLinear" for n in __import__("onnx").load(str(out)).graph.node)
    crops = quantize.calibration_crops(shipped_model, synthetic_root, "PCBData/trainval.txt", 2)
    # documented tolerance for INT8: class probabilities within 0.15 of FP32 on real crops
    assert np.abs(int8.run(crops) - fp32.run(crops)).max() < 0.15


def test_gate_refuses_a_degraded_model(shipped_model: Path, synthetic_root: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    real = quantize.calibration_crops

    def blind_calibration(*args, **kwargs) -> np.ndarray:  # noqa: ANN002, ANN003
        crops = real(*args, **kwargs)
        return crops * 0.01  # activations calibrated to a tiny range: everything real saturates

    monkeypatch.setattr(quantize, "calibration_crops", blind_calibration)
    out = tmp_path / "bad.onnx"
    report = quantize.quantize_int8(shipped_model, out, synthetic_root, calib_boards=4, max_drop_points=0.5)
    assert not report.written and not out.exists()
    assert report.drop_points > 0.5
    assert "drop" in report.table()


def test_bad_arguments(shipped_model: Path, synthetic_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--max-drop"):
        quantize.quantize_int8(shipped_model, tmp_path / "o.onnx", synthetic_root, max_drop_points=-1)
    with pytest.raises(ConfigError, match="FP32 .onnx model in"):
        quantize.quantize_int8(tmp_path / "m.pt", tmp_path / "o.onnx", synthetic_root)
