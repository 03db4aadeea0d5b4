"""A torch model behind the Backend interface, for evaluating checkpoints before export (development only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pcb_inspect.inspect.backends import Backend, file_sha256
from pcb_inspect.inspect.errors import ModelError
from pcb_inspect.models.architectures import build_model
from pcb_inspect.models.contract import ModelContract


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model: torch.nn.Module, contract: ModelContract, device: str = "cpu", batch: int = 512) -> None:
        self.model = model.to(device).eval()
        self.contract = contract
        self.device = device
        self.batch = batch

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> "TorchBackend":
        model, contract = load_checkpoint(path)
        backend = cls(model, contract, device)
        backend.model_sha256 = file_sha256(path)
        return backend

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(batch), self.batch):
            x = torch.from_numpy(np.ascontiguousarray(batch[start : start + self.batch], np.float32)).to(self.device)
            outputs.append(torch.softmax(self.model(x).float(), dim=1).cpu().numpy())
        if not outputs:
            return np.zeros((0, len(self.contract.class_names)), np.float32)
        return np.concatenate(outputs)


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, ModelContract]:
    """Model (eval mode, CPU) and its contract from a training checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        contract = ModelContract(**ckpt["contract"]).validate(str(path))
        model = build_model(ckpt["arch"], len(contract.class_names), len(contract.input_channels))
        model.load_state_dict(ckpt["model"])
    except ModelError:
        raise
    except Exception as exc:  # a torn or foreign file: say which and why, in one line
        raise ModelError(f"{path}: not a pcb-inspect checkpoint ({type(exc).__name__}: {exc})") from None
    return model.eval(), contract
