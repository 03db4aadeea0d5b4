"""Inference backends: one small interface over the runtimes that can score crops.

A backend loads a model file and runs a batch ``(N, C, H, W) float32 -> (N, classes) probabilities``; nothing
else. The model contract is read from the file's metadata when it loads.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from pcb_inspect.inspect.errors import BackendUnavailable, ModelError
from pcb_inspect.models.contract import METADATA_KEY, ModelContract


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Backend(ABC):
    """Scores a batch of crops; ``contract`` says how the crops must be built."""

    name: str = "base"
    contract: ModelContract
    model_sha256: str = ""

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32 -> (N, num_classes) class probabilities."""


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class OnnxRuntimeBackend(Backend):
    """onnxruntime on the CPU (other execution providers come with the production-inference work)."""

    name = "onnxruntime-cpu"

    def __init__(self, model_path: str | Path, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - base install has it
            raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from None
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"{path}: model file not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ModelError(f"{path}: no {METADATA_KEY} metadata; export it with 'pcb-inspect export'")
        self.contract = ModelContract.from_json(meta[METADATA_KEY], where=str(path))
        self.input_name = self.session.get_inputs()[0].name
        self.model_sha256 = file_sha256(path)
        self.path = path

    def run(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, len(self.contract.class_names)), np.float32)
        logits = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]
        return _softmax(logits)
