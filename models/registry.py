"""Where models are found: the shipped default (package data, FP32 and INT8) and a user's file, by path."""

from __future__ import annotations

from pathlib import Path

from pcb_inspect.inspect.errors import ModelError, PcbInspectError

DEFAULT_MODEL_NAME = "pcb_default.onnx"  # FP32: the reference, and what GPUs and TensorRT build from
DEFAULT_INT8_NAME = "pcb_default_int8.onnx"  # the same model quantized: the default wherever the CPU classifies
PRECISIONS = {"fp32": DEFAULT_MODEL_NAME, "int8": DEFAULT_INT8_NAME}


def default_model_path(precision: str = "fp32") -> Path:
    """The model shipped inside the package; works for editable and plain installs alike."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    # package data next to this module (resolved: a strict editable install links the module file only)
    path = Path(__file__).resolve().parent / "default" / PRECISIONS[precision]
    if not path.is_file():
        raise ModelError(f"{path}: the shipped default model is missing from this install; pass --model FILE")
    return path


def default_precision(backend: str = "auto") -> str:
    """INT8 where onnxruntime's CPU provider will classify (held-out F within 0.1 point of FP32, classifier
    1.5-1.7x faster, see the model card), FP32 for GPUs: TensorRT builds its own FP16/INT8 from FP32."""
    from pcb_inspect.inspect.backends import NATIVE_TENSORRT, BackendKind, resolve_kind

    if backend == NATIVE_TENSORRT:
        return "fp32"
    try:
        kind = resolve_kind(backend)
    except PcbInspectError:
        return "fp32"  # the backend will say why it cannot run; the model choice should not hide that
    return "int8" if kind is BackendKind.ORT_CPU else "fp32"


def resolve_model(model: str | Path | None, backend: str = "auto") -> Path:
    """``--model`` as given, or the shipped default for ``backend`` (INT8 on the CPU, if this install has it)."""
    if model is None:
        if default_precision(backend) == "int8":
            try:
                return default_model_path("int8")
            except ModelError:
                pass  # an install without the INT8 file still runs, on FP32
        return default_model_path()
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    return path


def open_backend(model: str | Path | None, device: str = "cpu", backend: str = "auto", threads: int = 0):  # noqa: ANN201
    """A backend for a model file: ``.onnx`` through onnxruntime (``backend`` picks the provider), a training
    ``.pt`` through torch (``device`` picks cpu or cuda)."""
    path = resolve_model(model, backend)
    if path.suffix == ".pt":
        if backend != "auto":
            raise ModelError(f"{path}: --backend {backend} runs .onnx models; a .pt checkpoint runs on torch")
        try:
            from pcb_inspect.training.torch_backend import TorchBackend  # torch only when asked for
        except ImportError as exc:
            raise ModelError(f"{path}: a training .pt checkpoint needs torch ({exc.name} is not installed: "
                             f"pip install 'pcb-inspect[train]'), or use the exported .onnx model") from None

        return TorchBackend.from_checkpoint(path, device)
    if path.suffix == ".onnx" and backend == "tensorrt":
        from pcb_inspect.inspect.tensorrt_engine import TensorRTBackend

        return TensorRTBackend(path)
    if path.suffix == ".onnx":
        from pcb_inspect.inspect.backends import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, backend, threads)
    raise ModelError(f"{path}: unknown model format {path.suffix!r}; use an .onnx file or a training .pt checkpoint")
