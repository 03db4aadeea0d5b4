"""Native TensorRT: build an engine on the machine that runs it, cache it, never load a stale or foreign one.

An engine is only valid for one model, one GPU model and one TensorRT version, so the cache key is exactly
those (plus precision), and a sidecar JSON next to each engine records the key it was built for. A lookup
loads an engine only when its sidecar matches the current key; anything else is rebuilt. The builder's
timing cache is kept per GPU and TensorRT version, which makes rebuilds fast.

NOT YET RUN ON A GPU: the build and run paths need ``tensorrt`` and ``cuda-python`` (the ``[gpu]`` extra)
and an NVIDIA GPU; CI tests the cache logic and the refusals, with the builder replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pcb_inspect.inspect.backends import Backend, OnnxRuntimeBackend, file_sha256, softmax
from pcb_inspect.inspect.errors import BackendUnavailable, ConfigError, ModelError

PRECISIONS = ("fp32", "fp16", "int8")
MAX_BATCH = 256  # candidates of one board in one call; more are split


@dataclass(frozen=True)
class EngineKey:
    model_sha256: str
    gpu: str
    tensorrt: str
    precision: str

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"engine precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]


def _trt():  # noqa: ANN202
    try:
        import tensorrt as trt
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise BackendUnavailable(
            f"tensorrt engines need the [gpu] extra (tensorrt, cuda-python) and an NVIDIA GPU: {exc}"
        ) from None
    return trt, cudart


def current_key(model: Path, precision: str) -> EngineKey:
    """The key for building ``model`` here: its sha256, this GPU's name and this TensorRT's version."""
    trt, cudart = _trt()
    err, props = cudart.cudaGetDeviceProperties(0)
    if int(err) != 0:
        raise BackendUnavailable(f"no usable CUDA device for TensorRT (cudaGetDeviceProperties: {err})")
    gpu = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return EngineKey(file_sha256(model), gpu.strip("\x00 "), trt.__version__, precision)


class EngineCache:
    """``<dir>/<digest>.engine`` with ``<digest>.json`` beside it, and one timing cache per GPU and TensorRT."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)

    def paths(self, key: EngineKey) -> tuple[Path, Path]:
        return self.dir / f"{key.digest}.engine", self.dir / f"{key.digest}.json"

    def timing_cache(self, key: EngineKey) -> Path:
        tag = hashlib.sha256(f"{key.gpu}|{key.tensorrt}".encode()).hexdigest()[:12]
        return self.dir / f"timing-{tag}.cache"

    def lookup(self, key: EngineKey) -> Path | None:
        """The cached engine for exactly this key, or None (missing, stale, foreign or torn)."""
        engine, meta = self.paths(key)
        try:
            recorded = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return engine if recorded == asdict(key) and engine.is_file() and engine.stat().st_size else None

    def load_or_build(self, key: EngineKey, build: Callable[[Path], bytes]) -> Path:
        """A valid engine for ``key``, building it with ``build(timing_cache_path)`` when none is cached."""
        found = self.lookup(key)
        if found:
            return found
        self.dir.mkdir(parents=True, exist_ok=True)
        engine, meta = self.paths(key)
        data = build(self.timing_cache(key))
        tmp = engine.with_suffix(".partial")
        tmp.write_bytes(data)
        tmp.replace(engine)
        meta.write_text(json.dumps(asdict(key), sort_keys=True))  # written last: a torn build is never "valid"
        return engine


def build_engine(model: Path, precision: str, timing_cache: Path) -> bytes:
    """Serialized engine for ``model`` (an INT8 build expects a QDQ model from ``--format onnx-int8``)."""
    trt, _ = _trt()
    contract = OnnxRuntimeBackend(model).contract
    shape = (len(contract.input_channels), contract.input_size, contract.input_size)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"{model}: TensorRT cannot parse it ({errors})")
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    profile.set_shape(network.get_input(0).name, (1, *shape), (16, *shape), (MAX_BATCH, *shape))
    config.add_optimization_profile(profile)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(f"{model}: TensorRT failed to build an engine ({precision})")
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


class TensorRTBackend(Backend):
    """Runs a cached engine with explicit device buffers (cuda-python); the contract comes from the ONNX file."""

    name = "tensorrt"

    def __init__(self, model: str | Path, precision: str = "fp16", cache_dir: str | Path | None = None) -> None:
        trt, cudart = _trt()
        model = Path(model)
        key = current_key(model, precision)
        # a deployed box sets PCB_INSPECT_ENGINE_CACHE: its release folders are read-only (ProtectSystem=strict)
        cache = EngineCache(cache_dir or os.environ.get("PCB_INSPECT_ENGINE_CACHE") or model.parent / ".engines")
        engine_path = cache.load_or_build(key, lambda timing: build_engine(model, precision, timing))
        self.contract = OnnxRuntimeBackend(model).contract
        self.model_sha256 = key.model_sha256
        self._cudart = cudart
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise ModelError(f"{engine_path}: TensorRT could not load the engine")
        self.context = self.engine.create_execution_context()
        self.input_name, self.output_name = (self.engine.get_tensor_name(i) for i in range(2))
        _, self.stream = cudart.cudaStreamCreate()

    def run(self, batch: np.ndarray) -> np.ndarray:
        outputs = [self._run_chunk(batch[i : i + MAX_BATCH]) for i in range(0, len(batch), MAX_BATCH)]
        if not outputs:
            return np.zeros((0, len(self.contract.class_names)), np.float32)
        return softmax(np.concatenate(outputs))

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        cudart, n = self._cudart, len(chunk)
        host_in = np.ascontiguousarray(chunk, np.float32)
        host_out = np.empty((n, len(self.contract.class_names)), np.float32)
        _, d_in = cudart.cudaMalloc(host_in.nbytes)
        _, d_out = cudart.cudaMalloc(host_out.nbytes)
        try:
            h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
            cudart.cudaMemcpyAsync(d_in, host_in.ctypes.data, host_in.nbytes, h2d, self.stream)
            self.context.set_input_shape(self.input_name, host_in.shape)
            self.context.set_tensor_address(self.input_name, int(d_in))
            self.context.set_tensor_address(self.output_name, int(d_out))
            if not self.context.execute_async_v3(self.stream):
                raise ModelError("TensorRT execution failed")
            cudart.cudaMemcpyAsync(host_out.ctypes.data, d_out, host_out.nbytes, d2h, self.stream)
            cudart.cudaStreamSynchronize(self.stream)
        finally:
            cudart.cudaFree(d_in)
            cudart.cudaFree(d_out)
        return host_out
