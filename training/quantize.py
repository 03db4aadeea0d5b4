"""INT8 for the CPU: onnxruntime static quantization (QDQ), calibrated on training crops, behind an accuracy gate.

Calibration crops come from training groups only (never the model's held-out groups), made by the same front
end the line runs. Activation ranges are the 99.99th percentile of the calibration values, not their extremes:
on the held-out groups that kept F 0.9762 against FP32's 0.9773, where min-max ranges gave 0.9758 (both
calibrated on 100 boards; 300 boards gave 0.9764 and 0.9758). The quantized model is scored on the held-out
groups against its FP32 parent in the same run; if its F-score drops by more than ``max_drop_points`` it is not
written. Speed and accuracy are printed side by side either way.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcb_inspect.inspect.backends import OnnxRuntimeBackend, file_sha256
from pcb_inspect.inspect.engine import Inspector
from pcb_inspect.inspect.errors import ConfigError, ModelError
from pcb_inspect.models.contract import METADATA_KEY, set_metrics
from pcb_inspect.training.candidates import build_board_candidates, crops_as_float
from pcb_inspect.inspect.deeppcb import read_split
from pcb_inspect.training.evaluate import evaluate_runs, run_boards

CALIBRATION_BATCH = 64
CALIBRATION_PERCENTILE = 99.99
CALIBRATION_BOARDS = 100


@dataclass
class QuantizationReport:
    fp32_f_score: float
    int8_f_score: float
    fp32_ms_per_crop: float
    int8_ms_per_crop: float
    boards: int
    written: bool

    @property
    def drop_points(self) -> float:
        return 100 * (self.fp32_f_score - self.int8_f_score)

    @property
    def speedup(self) -> float:
        return self.fp32_ms_per_crop / self.int8_ms_per_crop if self.int8_ms_per_crop else 0.0

    def as_metrics(self, fp32_sha256: str, calibration_crops: int) -> dict:
        return {
            "heldout_f_score": self.int8_f_score,
            "fp32_heldout_f_score": self.fp32_f_score,
            "fp32_sha256": fp32_sha256,
            "heldout_boards": self.boards,
            "calibration": f"{calibration_crops} trainval crops, {CALIBRATION_PERCENTILE} percentile ranges",
        }

    def table(self) -> str:
        return (
            f"{'model':6s} {'F-score':>8s} {'ms/crop':>8s}\n"
            f"{'fp32':6s} {self.fp32_f_score:8.4f} {self.fp32_ms_per_crop:8.4f}\n"
            f"{'int8':6s} {self.int8_f_score:8.4f} {self.int8_ms_per_crop:8.4f}\n"
            f"drop {self.drop_points:.2f} points, classifier {self.speedup:.2f}x faster, held-out boards {self.boards}"
        )


def calibration_crops(model: Path, data: Path, split: str, boards: int, seed: int = 0) -> np.ndarray:
    """Crops of up to ``boards`` pairs from the model's training groups, as the line would build them."""
    backend = OnnxRuntimeBackend(model, "onnxruntime-cpu")
    held_out = set(backend.contract.training_data.get("val_groups", []))
    records = [r for r in read_split(data, split) if r.group not in held_out]
    if not records:
        raise ConfigError(f"--calib {data}: no pairs outside the held-out groups {sorted(held_out)}")
    pick = np.random.default_rng(seed).permutation(len(records))[:boards]
    c = backend.contract
    found = build_board_candidates([records[i] for i in sorted(pick)], size=c.input_size, margin=c.crop_margin,
                                   desc="calibration crops")
    crops = crops_as_float(np.concatenate([b.crops for b in found]))
    if len(crops) == 0:
        raise ConfigError(f"--calib {data}: the calibration boards gave no candidates")
    return crops


def _time_per_crop(backend: OnnxRuntimeBackend, crops: np.ndarray, batch: int = 16, repeats: int = 3) -> float:
    """Milliseconds per crop at a board-sized batch (all of one board's candidates in one call)."""
    backend.run(crops[:batch])
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for start in range(0, len(crops), batch):
            backend.run(crops[start : start + batch])
        best = min(best, (time.perf_counter() - t0) * 1e3 / len(crops))
    return best


def quantize_int8(
    model: str | Path,
    out: str | Path,
    calib: str | Path,
    split: str = "PCBData/trainval.txt",
    calib_boards: int = CALIBRATION_BOARDS,
    max_drop_points: float = 0.5,
) -> QuantizationReport:
    """Write ``out`` (INT8, QDQ) if held-out F-score drops by at most ``max_drop_points``; report either way."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model, out, calib = Path(model), Path(out), Path(calib)
    if model.suffix != ".onnx" or out.suffix != ".onnx":
        raise ConfigError("onnx-int8 export needs an FP32 .onnx model in and an .onnx file out")
    if max_drop_points < 0:
        raise ConfigError(f"--max-drop {max_drop_points} must not be negative")
    crops = calibration_crops(model, calib, split, calib_boards)
    input_name = OnnxRuntimeBackend(model, "onnxruntime-cpu").input_name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:  # equal batches: the percentile calibrator cannot stack ragged ones
            n = max(1, len(crops) // CALIBRATION_BATCH)
            self.batches = iter(np.split(crops[: n * CALIBRATION_BATCH], n) if len(crops) >= CALIBRATION_BATCH else [crops])

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantized = Path(tmp) / "prep.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": CALIBRATION_PERCENTILE})
        proto = onnx.load(str(quantized))
        source = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
        del proto.metadata_props[:]
        for key, value in source.items():  # the contract travels with the INT8 file too
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        if METADATA_KEY not in source:
            raise ModelError(f"{model}: no {METADATA_KEY} metadata to carry over")
        onnx.save(proto, str(quantized))
        report = _compare(model, quantized, calib, split, crops)
        report.written = report.drop_points <= max_drop_points
        if report.written:
            # the parent's held-out metrics would misdescribe this file: it carries its own gate result instead
            set_metrics(quantized, {"int8": report.as_metrics(file_sha256(model), len(crops))})
            out.parent.mkdir(parents=True, exist_ok=True)
            quantized.replace(out)
    return report


def _compare(fp32: Path, int8: Path, data: Path, split: str, crops: np.ndarray) -> QuantizationReport:
    scores, speeds = [], []
    for path in (fp32, int8):
        backend = OnnxRuntimeBackend(path, "onnxruntime-cpu")
        groups = set(backend.contract.training_data.get("val_groups", []))
        records = [r for r in read_split(data, split) if r.group in groups] or read_split(data, split)
        inspector = Inspector(backend)
        result = evaluate_runs(run_boards(inspector, records), inspector.policy)
        scores.append(result["f_score"])
        speeds.append(_time_per_crop(backend, crops))
    return QuantizationReport(scores[0], scores[1], speeds[0], speeds[1], len(records), False)
