"""Train -> resume -> export -> reload round trip on a few synthetic boards (seconds, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pcb_inspect.inspect.backends import OnnxRuntimeBackend
from pcb_inspect.inspect.errors import ConfigError, ModelError
from pcb_inspect.training.export import export_onnx, parity_check, parity_inputs
from pcb_inspect.training.torch_backend import load_checkpoint
from pcb_inspect.training.train import TrainConfig, train


@pytest.fixture(scope="module")
def run_dir(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(data=synthetic_root, out=out, epochs=2, batch=64, max_boards=6, workers=1, patience=5)
    summary = train(cfg)
    assert summary["epochs_run"] == 2
    return out


def test_training_writes_checkpoints_and_history(run_dir: Path, synthetic_root: Path) -> None:
    from pcb_inspect.inspect.deeppcb import read_split, split_by_group

    train_records, val_records = split_by_group(read_split(synthetic_root, "PCBData/trainval.txt"))
    assert (run_dir / "best.pt").is_file() and (run_dir / "last.pt").is_file()
    results = json.loads((run_dir / "results.json").read_text())
    assert [h["epoch"] for h in results["history"]] == [1, 2]
    assert all(np.isfinite(h["loss"]) for h in results["history"])
    model, contract = load_checkpoint(run_dir / "best.pt")
    assert contract.training_data["train_boards"] == min(6, len(train_records)) and contract.arch == "small"
    assert contract.training_data["val_groups"] == sorted({r.group for r in val_records})


def test_resume_continues_where_it_stopped(run_dir: Path, synthetic_root: Path, tmp_path: Path) -> None:
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("last.pt", "best.pt"):
        (resumed / name).write_bytes((run_dir / name).read_bytes())
    for crops in run_dir.glob("crops-*.npz"):
        (resumed / crops.name).write_bytes(crops.read_bytes())
    cfg = TrainConfig(
        data=synthetic_root, out=resumed, epochs=3, batch=64, max_boards=6, workers=1, patience=5, resume=True
    )
    summary = train(cfg)
    before = json.loads((run_dir / "results.json").read_text())["history"]
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    assert summary["history"][:2] == before


def test_export_round_trip_with_contract_and_parity(run_dir: Path, tmp_path: Path) -> None:
    out = export_onnx(run_dir / "best.pt", tmp_path / "m.onnx", metrics={"f_score": 0.5})
    backend = OnnxRuntimeBackend(out)
    assert backend.contract.metrics == {"f_score": 0.5}
    assert backend.contract.training_data["split"] == "PCBData/trainval.txt"
    assert "pcb-inspect" in backend.contract.version
    model, _ = load_checkpoint(run_dir / "best.pt")
    x = parity_inputs(backend.contract.input_size, n=9, seed=3)  # a batch size never seen at export
    with torch.inference_mode():
        expected = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    assert np.abs(backend.run(x) - expected).max() <= 1e-4


def test_parity_failure_is_refused(run_dir: Path, tmp_path: Path) -> None:
    out = export_onnx(run_dir / "best.pt", tmp_path / "m.onnx")
    model, _ = load_checkpoint(run_dir / "best.pt")
    with torch.no_grad():
        model.head[1].bias.add_(0.01)  # a model that no longer matches the file
    with pytest.raises(ModelError, match="differ by"):
        parity_check(model, out)


def test_export_errors_are_one_clear_line(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must end in .onnx"):
        export_onnx(run_dir / "best.pt", tmp_path / "m.txt")
    torn = tmp_path / "torn.pt"
    torn.write_bytes((run_dir / "best.pt").read_bytes()[:1000])
    with pytest.raises(ModelError, match="torn.pt: not a pcb-inspect checkpoint"):
        export_onnx(torn, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_without_contract_is_refused(tmp_path: Path) -> None:
    model = torch.nn.Linear(4, 7)
    path = tmp_path / "plain.onnx"
    torch.onnx.export(model, (torch.zeros(1, 4),), str(path), dynamo=False)
    with pytest.raises(ModelError, match="no pcb_inspect.contract metadata"):
        OnnxRuntimeBackend(path)
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ModelError, match="junk.onnx: not a loadable ONNX model"):
        OnnxRuntimeBackend(tmp_path / "junk.onnx")


def test_early_stopping_after_patience(synthetic_root: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from types import SimpleNamespace

    from pcb_inspect.training import train as train_module

    flat = SimpleNamespace(f_score=0.5, precision=0.5, recall=0.5, ap=0.5, escapes=0)
    monkeypatch.setattr(train_module, "evaluate", lambda boards: flat)  # held-out score never improves
    cfg = TrainConfig(data=synthetic_root, out=tmp_path, epochs=10, batch=64, max_boards=4, workers=1, patience=2)
    summary = train(cfg)
    assert summary["epochs_run"] == 3  # the first epoch sets the best, two more without gain stop it
