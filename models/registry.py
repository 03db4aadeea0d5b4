"""Where models are found: the shipped default (package data) and a user's file, by path."""

from __future__ import annotations

from pathlib import Path

from pcb_inspect.inspect.errors import ModelError

DEFAULT_MODEL_NAME = "pcb_default.onnx"


def default_model_path() -> Path:
    """The model shipped inside the package; works for editable and plain installs alike."""
    # package data next to this module (resolved: a strict editable install links the module file only)
    path = Path(__file__).resolve().parent / "default" / DEFAULT_MODEL_NAME
    if not path.is_file():
        raise ModelError(f"{path}: the shipped default model is missing from this install; pass --model FILE")
    return path


def resolve_model(model: str | Path | None) -> Path:
    """``--model`` as given, or the shipped default when it is not."""
    if model is None:
        return default_model_path()
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    return path


def open_backend(model: str | Path | None, device: str = "cpu", backend: str = "auto", threads: int = 0):  # noqa: ANN201
    """A backend for a model file: ``.onnx`` through onnxruntime (``backend`` picks the provider), a training
    ``.pt`` through torch (``device`` picks cpu or cuda)."""
    path = resolve_model(model)
    if path.suffix == ".pt":
        if backend != "auto":
            raise ModelError(f"{path}: --backend {backend} runs .onnx models; a .pt checkpoint runs on torch")
        from pcb_inspect.training.torch_backend import TorchBackend  # torch only when asked for

        return TorchBackend.from_checkpoint(path, device)
    if path.suffix == ".onnx" and backend == "tensorrt":
        from pcb_inspect.inspect.tensorrt_engine import TensorRTBackend

        return TensorRTBackend(path)
    if path.suffix == ".onnx":
        from pcb_inspect.inspect.backends import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, backend, threads)
    raise ModelError(f"{path}: unknown model format {path.suffix!r}; use an .onnx file or a training .pt checkpoint")
