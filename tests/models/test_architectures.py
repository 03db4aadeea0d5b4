from __future__ import annotations

import pytest
import torch

from pcb_inspect.models.architectures import ARCHITECTURES, build_model


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_takes_the_crop_contract_and_learns(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, in_channels=5)
    x = torch.randn(4, 5, 48, 48)
    y = torch.tensor([0, 1, 2, 6])
    assert model(x).shape == (4, 7)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(5):  # the same batch a few times: the loss must go down, gradients reach the input stem
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_unknown_architecture_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="choose one of small, tiny, resnet18"):
        build_model("vit")
