from __future__ import annotations

import numpy as np
import pytest

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.registration import RegistrationConfig, register, warp_template
from pcb_inspect.training.degrade import move_and_degrade
from pcb_inspect.training.synthetic import generate_board

CORNERS = np.array([[0, 0, 1], [639, 0, 1], [0, 639, 1], [639, 639, 1]], float).T


def _corner_error(found: np.ndarray, moved_matrix: np.ndarray) -> float:
    """How far, in pixels, the found tested->template map is from the true inverse of the move."""
    full = np.vstack([moved_matrix, [0, 0, 1]])
    truth = np.linalg.inv(full)[:2]
    return float(np.abs(found @ CORNERS - truth @ CORNERS).max())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_recovers_a_moved_degraded_board(seed: int) -> None:
    board = generate_board(seed)
    moved = move_and_degrade(board.template, np.random.default_rng(seed))
    reg = register(moved.image, board.template)
    assert reg.ok
    assert _corner_error(reg.matrix, moved.matrix) < 0.75
    # after warping, the template matches the moved image almost everywhere
    warped = warp_template(board.template, reg)
    inner = (slice(20, -20), slice(20, -20))
    disagree = np.mean((warped[inner] > 127) != (moved.image[inner] > 127))
    assert disagree < 0.02


def test_identity_for_identical_images() -> None:
    board = generate_board(5)
    reg = register(board.template, board.template)
    assert np.allclose(reg.matrix, [[1, 0, 0], [0, 1, 0]], atol=0.05)


def test_size_mismatch_and_bad_config() -> None:
    with pytest.raises(ConfigError, match="differ in size"):
        register(np.zeros((64, 64), np.uint8), np.zeros((64, 65), np.uint8))
    with pytest.raises(ConfigError, match="registration.scales"):
        RegistrationConfig(scales=(2.0,))


def test_featureless_images_fall_back_without_crashing() -> None:
    blank = np.full((640, 640), 128, np.uint8)
    reg = register(blank, blank)
    assert np.all(np.isfinite(reg.matrix))
