"""Export a training checkpoint to ONNX with the model contract inside, and prove the file computes the same.

The exported graph outputs logits for a dynamic batch of crops; the contract (classes, input, normalisation,
proposal and threshold settings, training-data fingerprint, metrics, version) sits in the file's metadata, so
the file alone is enough for a box. A parity check runs torch and onnxruntime on the same crops and refuses the
file if they differ by more than ``PARITY_TOLERANCE``.
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from pcb_inspect.inspect.backends import OnnxRuntimeBackend, file_sha256
from pcb_inspect.inspect.records import CROP_CHANNELS
from pcb_inspect.inspect.errors import ConfigError, ModelError
from pcb_inspect.models.contract import METADATA_KEY
from pcb_inspect.training.torch_backend import load_checkpoint

PARITY_TOLERANCE = 1e-4
EXPORT_FORMATS = {"onnx": ".onnx", "onnx-int8": ".onnx", "engine": ".engine"}


def package_version() -> str:
    try:
        return version("pcb-inspect")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def parity_inputs(size: int, n: int = 64, seed: int = 0) -> np.ndarray:
    """Crops that look like the real ones (blocky +-1 copper, sparse signed difference) plus plain noise."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 2, (n, 2, size // 8, size // 8)).astype(np.float32) * 2 - 1
    copper = blocks.repeat(8, axis=2).repeat(8, axis=3)
    diff = np.clip(copper[:, :1] - copper[:, 1:2], -1, 1) * (rng.random((n, 1, size, size)) < 0.3)
    topology = np.broadcast_to(rng.integers(-2, 3, (n, 2, 1, 1)) / 2, (n, 2, size, size))
    real_like = np.concatenate([copper, diff, topology], axis=1)
    noise = rng.uniform(-1, 1, (8, len(CROP_CHANNELS), size, size)).astype(np.float32)
    return np.concatenate([real_like, noise]).astype(np.float32)


def export_onnx(checkpoint: str | Path, out: str | Path, metrics: dict | None = None, opset: int = 17) -> Path:
    """Write ``out`` and return it; raises ModelError (and leaves no file) if parity fails."""
    import onnx

    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix != EXPORT_FORMATS["onnx"]:
        raise ConfigError(f"--out {out}: an ONNX model file must end in .onnx")
    model, contract = load_checkpoint(checkpoint)
    contract.version = f"pcb-inspect {package_version()}, checkpoint sha256 {file_sha256(checkpoint)[:16]}"
    if metrics is not None:
        contract.metrics = metrics
    size = contract.input_size
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    dummy = torch.zeros(2, len(contract.input_channels), size, size)
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated but needs only `onnx`; dynamo=True would need onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=["crops"],
            output_names=["logits"],
            dynamic_axes={"crops": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load(str(tmp))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, contract.to_json()
    proto.producer_name = "pcb-inspect"
    proto.doc_string = f"PCB defect candidate classifier ({contract.arch}); contract in metadata {METADATA_KEY}"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    try:
        worst = parity_check(model, tmp)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    print(f"exported {out} ({out.stat().st_size / 1e6:.2f} MB), torch vs onnxruntime max |diff| {worst:.2e}")
    return out


def parity_check(model: torch.nn.Module, onnx_path: Path, tolerance: float = PARITY_TOLERANCE) -> float:
    """Max absolute logit difference between torch and onnxruntime on the same crops; raises above tolerance."""
    backend = OnnxRuntimeBackend(onnx_path)
    x = parity_inputs(backend.contract.input_size)
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    got = backend.session.run(None, {backend.input_name: x})[0]
    worst = float(np.abs(expected - got).max())
    if not worst <= tolerance:
        raise ModelError(f"{onnx_path}: torch and onnxruntime differ by {worst:.2e} > {tolerance:.0e}; not exported")
    return worst


def load_metrics(path: str | Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--metrics {path}: not a readable JSON file ({exc})") from None
