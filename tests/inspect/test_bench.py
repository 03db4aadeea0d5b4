from __future__ import annotations

from types import SimpleNamespace

import pytest

from pcb_inspect.inspect.bench import classify_in_workers
from pcb_inspect.inspect.errors import ConfigError


def _inspector(name: str, path: bool = True) -> SimpleNamespace:
    backend = SimpleNamespace(name=name, **({"path": "model.onnx"} if path else {}))
    return SimpleNamespace(backend=backend)


def test_cpu_models_are_classified_in_the_workers_and_gpus_in_the_main_process() -> None:
    assert classify_in_workers(_inspector("onnxruntime-cpu"), "auto")
    assert not classify_in_workers(_inspector("onnxruntime-cuda"), "auto")
    assert not classify_in_workers(_inspector("tensorrt"), "auto")
    assert not classify_in_workers(_inspector("torch", path=False), "auto")
    assert not classify_in_workers(_inspector("onnxruntime-cpu"), "main")


@pytest.mark.parametrize(("name", "where", "message"), [
    ("onnxruntime-cuda", "workers", "only an onnxruntime-cpu .onnx model can be opened in each worker"),
    ("torch", "workers", "not torch"),
    ("onnxruntime-cpu", "everywhere", "--classify-in 'everywhere': choose one of"),
])
def test_impossible_placements_are_refused(name: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        classify_in_workers(_inspector(name, path=name != "torch"), where)


@pytest.mark.parametrize(("items", "chunk", "depth"), [(0, 8, 2), (1, 8, 2), (17, 8, 2), (17, 1, 3), (16, 4, 1)])
def test_chunked_map_keeps_every_item_in_order(items: int, chunk: int, depth: int) -> None:
    """Boards travel to the workers in chunks (less work for the main process), but come back one by one, all
    of them, in order, however the chunk size divides the list."""
    from concurrent.futures import ThreadPoolExecutor

    from pcb_inspect.inspect.bench import _bounded_map

    with ThreadPoolExecutor(2) as pool:
        assert list(_bounded_map(pool, lambda x: x * x, list(range(items)), depth, chunk)) == [
            x * x for x in range(items)
        ]
