"""Classifier architectures (torch; imported only for training and export, never on the line).

Chosen by a table: ``ARCHITECTURES[name](num_classes, in_channels)``. ``small`` is the default: about 240k
parameters, fast on two CPU cores; ``tiny`` is the same at two thirds the width. The torchvision networks are adapted to 48 px crops (no stem
down-sampling that would erase few-pixel mousebites) for when accuracy is worth more than speed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Four conv stages with pooling, global average pool and a linear head."""

    def __init__(self, num_classes: int = 7, in_channels: int = 5, width: int = 24, dropout: float = 0.2) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_bn(in_channels, w),
            nn.MaxPool2d(2),
            _conv_bn(w, 2 * w),
            _conv_bn(2 * w, 2 * w),
            nn.MaxPool2d(2),
            _conv_bn(2 * w, 4 * w),
            nn.MaxPool2d(2),
            _conv_bn(4 * w, 8 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resnet18(num_classes: int = 7, in_channels: int = 5) -> nn.Module:
    """torchvision ResNet-18, stem made 3x3 stride 1 without max-pool for small crops; random init."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def mobilenet_v3_small(num_classes: int = 7, in_channels: int = 5) -> nn.Module:
    """torchvision MobileNetV3-Small with a stride-1 stem for small crops; random init."""
    from torchvision.models import mobilenet_v3_small as tv_mnv3

    model = tv_mnv3(weights=None, num_classes=num_classes)
    stem = model.features[0][0]
    model.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, stride=1, padding=1, bias=False)
    return model


def tiny(num_classes: int = 7, in_channels: int = 5) -> nn.Module:
    """SmallCNN at two thirds the width: about half the compute, for the slowest boxes."""
    return SmallCNN(num_classes, in_channels, width=16)


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "small": SmallCNN,
    "tiny": tiny,
    "resnet18": resnet18,
    "mobilenet_v3_small": mobilenet_v3_small,
}


def build_model(name: str, num_classes: int = 7, in_channels: int = 5) -> nn.Module:
    """Build an architecture by name; an unknown name lists the valid ones."""
    try:
        factory = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}") from None
    return factory(num_classes=num_classes, in_channels=in_channels)
