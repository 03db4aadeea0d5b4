"""Backend selection at its seam: which provider `auto` picks, and one clear line when one is unusable.

CUDA and TensorRT providers are not installed on CI machines; their selection logic is tested here with the
provider list replaced, their actual execution is not run (no GPU).
"""

from __future__ import annotations

import numpy as np
import pytest

from pcb_inspect.inspect import backends
from pcb_inspect.inspect.backends import BackendKind, OnnxRuntimeBackend, doctor, resolve_kind
from pcb_inspect.inspect.errors import BackendUnavailable

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        (ALL, BackendKind.ORT_TENSORRT),
        (ALL[1:], BackendKind.ORT_CUDA),
        (ALL[2:], BackendKind.ORT_CPU),
    ],
)
def test_auto_prefers_tensorrt_then_cuda_then_cpu(monkeypatch, available, expected) -> None:  # noqa: ANN001
    monkeypatch.setattr(backends, "available_ort_providers", lambda: available)
    assert resolve_kind("auto") is expected


def test_asking_for_an_unusable_provider_says_why(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(backends, "available_ort_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(BackendUnavailable, match="onnxruntime-cuda: CUDAExecutionProvider is not available.*"
                                                 "available: CPUExecutionProvider"):
        resolve_kind("onnxruntime-cuda")
    monkeypatch.setattr(backends, "available_ort_providers", lambda: [])
    with pytest.raises(BackendUnavailable, match="no onnxruntime execution provider"):
        resolve_kind("auto")


def test_unknown_kind_lists_the_valid_ones() -> None:
    with pytest.raises(BackendUnavailable, match="choose one of auto, onnxruntime-cpu"):
        resolve_kind("tpu")


def test_cpu_backend_runs_the_shipped_model(shipped_model) -> None:  # noqa: ANN001
    backend = OnnxRuntimeBackend(shipped_model, "auto")
    assert backend.name == "onnxruntime-cpu"  # the only provider a CI machine has
    size, channels = backend.contract.input_size, len(backend.contract.input_channels)
    probs = backend.run(np.zeros((3, channels, size, size), np.float32))
    assert probs.shape == (3, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert backend.run(np.zeros((0, channels, size, size), np.float32)).shape == (0, 7)


def test_doctor_lists_every_kind() -> None:
    names = [row[0] for row in doctor()]
    assert {"onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-tensorrt"} <= set(names)
    assert dict((n, u) for n, u, _ in doctor())["onnxruntime-cpu"] is True
