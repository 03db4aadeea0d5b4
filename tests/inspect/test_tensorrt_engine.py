"""The TensorRT engine cache at its seam: a stale or foreign engine is rebuilt, never loaded.

The builder is replaced by a function that counts calls; real engine builds need a GPU (not run here).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pytest

from pcb_inspect.inspect.errors import BackendUnavailable, ConfigError
from pcb_inspect.inspect.tensorrt_engine import EngineCache, EngineKey, TensorRTBackend

KEY = EngineKey("a" * 64, "NVIDIA Orin", "10.3.0", "fp16")


class CountingBuilder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, timing_cache: Path) -> bytes:
        self.calls += 1
        return f"engine-{self.calls}".encode()


def test_fresh_engine_is_built_once_then_loaded(tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path), CountingBuilder()
    first = cache.load_or_build(KEY, build)
    second = cache.load_or_build(KEY, build)
    assert first == second and build.calls == 1 and first.read_bytes() == b"engine-1"


@pytest.mark.parametrize(
    "changed",
    [
        replace(KEY, model_sha256="b" * 64),  # the model was retrained: stale
        replace(KEY, gpu="NVIDIA A100"),  # copied from another machine: foreign
        replace(KEY, tensorrt="10.4.0"),  # TensorRT upgraded
        replace(KEY, precision="int8"),
    ],
)
def test_any_change_of_key_rebuilds(tmp_path: Path, changed: EngineKey) -> None:
    cache, build = EngineCache(tmp_path), CountingBuilder()
    cache.load_or_build(KEY, build)
    assert cache.lookup(changed) is None
    cache.load_or_build(changed, build)
    assert build.calls == 2


def test_a_foreign_engine_under_our_name_is_not_loaded(tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path), CountingBuilder()
    engine, meta = cache.paths(KEY)
    tmp_path.mkdir(exist_ok=True)
    engine.write_bytes(b"someone else's engine")
    meta.write_text(json.dumps({"model_sha256": "c" * 64, "gpu": KEY.gpu, "tensorrt": KEY.tensorrt,
                                "precision": KEY.precision}))
    assert cache.lookup(KEY) is None
    assert cache.load_or_build(KEY, build).read_bytes() == b"engine-1"


def test_torn_sidecar_or_empty_engine_means_rebuild(tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path), CountingBuilder()
    cache.load_or_build(KEY, build)
    engine, meta = cache.paths(KEY)
    meta.write_text("{not json")
    assert cache.lookup(KEY) is None
    cache.load_or_build(KEY, build)
    engine.write_bytes(b"")
    assert cache.lookup(KEY) is None


def test_timing_cache_is_shared_per_gpu_and_version(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    assert cache.timing_cache(KEY) == cache.timing_cache(replace(KEY, model_sha256="d" * 64, precision="fp32"))
    assert cache.timing_cache(KEY) != cache.timing_cache(replace(KEY, gpu="other"))


def test_bad_precision() -> None:
    with pytest.raises(ConfigError, match="choose one of fp32, fp16, int8"):
        EngineKey("a", "g", "t", "int4")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_without_tensorrt_the_backend_says_what_is_missing(shipped_model: Path) -> None:
    with pytest.raises(BackendUnavailable, match=r"need the \[gpu\] extra"):
        TensorRTBackend(shipped_model)
