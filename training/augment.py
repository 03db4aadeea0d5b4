"""Paired-crop augmentation with albumentations.

Tested, template and difference are the channels of one image, so every geometric transform is applied to all
three identically by construction. A defect's type does not depend on orientation (an open rotated is an
open), hence the full dihedral group; small shifts and scales imitate box jitter.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np


def train_transform(seed: int | None = None) -> A.Compose:
    return A.Compose(
        [
            A.D4(p=1.0),
            A.Affine(
                translate_px=(-3, 3),
                scale=(0.9, 1.1),
                interpolation=cv2.INTER_NEAREST,
                border_mode=cv2.BORDER_REPLICATE,
                p=0.5,
            ),
        ],
        seed=seed,
    )


def augment_crop(transform: A.Compose, crop: np.ndarray) -> np.ndarray:
    """(C, H, W) float32 -> the same shape, transformed as one multi-channel image."""
    out = transform(image=np.ascontiguousarray(crop.transpose(1, 2, 0)))["image"]
    return np.ascontiguousarray(out.transpose(2, 0, 1))
