"""Inference backends: one small interface over the runtimes that can score crops.

A backend loads a model file and runs a batch ``(N, C, H, W) float32 -> (N, classes) probabilities``; nothing
else. The model contract is read from the file's metadata when it loads.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from enum import StrEnum
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


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class BackendKind(StrEnum):
    """What ``--backend`` accepts; ``auto`` takes the fastest usable onnxruntime provider."""

    AUTO = "auto"
    ORT_CPU = "onnxruntime-cpu"
    ORT_CUDA = "onnxruntime-cuda"
    ORT_TENSORRT = "onnxruntime-tensorrt"


#: onnxruntime execution provider behind each kind, fastest first (the order ``auto`` tries them in).
ORT_PROVIDERS: dict[BackendKind, str] = {
    BackendKind.ORT_TENSORRT: "TensorrtExecutionProvider",
    BackendKind.ORT_CUDA: "CUDAExecutionProvider",
    BackendKind.ORT_CPU: "CPUExecutionProvider",
}


#: The native TensorRT engine (``pcb_inspect.inspect.tensorrt_engine``); never chosen by ``auto``, because its
#: first use builds an engine, which takes minutes.
NATIVE_TENSORRT = "tensorrt"


def parse_kind(kind: str | BackendKind) -> BackendKind:
    try:
        return BackendKind(kind)
    except ValueError:
        valid = [k.value for k in BackendKind] + [NATIVE_TENSORRT]
        raise BackendUnavailable(f"--backend {kind!r} is unknown; choose one of {', '.join(valid)}") from None


def available_ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - the base install has it
        return []
    return list(ort.get_available_providers())


def resolve_kind(kind: str | BackendKind) -> BackendKind:
    """The concrete kind ``kind`` means here; an unusable one fails with the reason and what is usable."""
    kind = parse_kind(kind)
    available = available_ort_providers()
    if kind is BackendKind.AUTO:
        for candidate, provider in ORT_PROVIDERS.items():
            if provider in available:
                return candidate
        raise BackendUnavailable("no onnxruntime execution provider is usable (is onnxruntime installed?)")
    if ORT_PROVIDERS[kind] not in available:
        hint = " (install the [gpu] extra: onnxruntime-gpu, and never beside plain onnxruntime)" if kind is not BackendKind.ORT_CPU else ""
        raise BackendUnavailable(
            f"--backend {kind.value}: {ORT_PROVIDERS[kind]} is not available in this onnxruntime{hint}; "
            f"available: {', '.join(available) or 'none'}"
        )
    return kind


class OnnxRuntimeBackend(Backend):
    """onnxruntime with one execution provider (CPU, CUDA or TensorRT), CPU as the fallback for unsupported ops."""

    def __init__(self, model_path: str | Path, kind: str | BackendKind = BackendKind.ORT_CPU, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - base install has it
            raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from None
        kind = resolve_kind(kind)
        self.name = kind.value
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"{path}: model file not found")
        options = ort.SessionOptions()
        if threads:  # set by callers that run their own worker threads, so the cores are not oversubscribed
            options.intra_op_num_threads = threads
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        providers = [ORT_PROVIDERS[kind]] + (["CPUExecutionProvider"] if kind is not BackendKind.ORT_CPU else [])
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
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
        return softmax(logits)


def doctor() -> list[tuple[str, bool, str]]:
    """(backend, usable, version or reason) for every kind, so users and tests can see what this box can run."""
    rows: list[tuple[str, bool, str]] = []
    try:
        import onnxruntime as ort

        version = f"onnxruntime {ort.__version__}"
    except ImportError as exc:  # pragma: no cover
        version = f"onnxruntime missing ({exc})"
    available = available_ort_providers()
    for kind, provider in ORT_PROVIDERS.items():
        usable = provider in available
        rows.append((kind.value, usable, version if usable else f"{provider} not in this onnxruntime"))
    try:
        import tensorrt

        rows.append((NATIVE_TENSORRT, True, f"tensorrt {tensorrt.__version__} (engines build on first use)"))
    except ImportError:
        rows.append((NATIVE_TENSORRT, False, "tensorrt not installed (the [gpu] extra)"))
    try:
        import torch

        rows.append(("torch (.pt checkpoints)", True, f"torch {torch.__version__}, cuda {torch.cuda.is_available()}"))
    except ImportError:
        rows.append(("torch (.pt checkpoints)", False, "torch not installed (the [train] extra)"))
    return rows
