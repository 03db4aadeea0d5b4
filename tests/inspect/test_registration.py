from __future__ import annotations

import numpy as np
import pytest

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.registration import RegistrationConfig, register, warp_template
from pcb_inspect.inspect.degrade import move_and_degrade
from pcb_inspect.inspect.synthetic import generate_board

CORNERS = np.array([[0, 0, 1], [639, 0, 1], [0, 639, 1], [639, 639, 1]], float).T


def _corner_error(found: np.ndarray, moved_matrix: np.ndarray) -> float:
    """How far, in pixels, the found tested->template map is from the true inverse of the move."""
    full = np.vstack([moved_matrix, [0, 0, 1]])
    truth = np.linalg.inv(full)[:2]
    return float(np.abs(found @ CORNERS - truth @ CORNERS).max())


@pytest.mark.parametrize("refine", ["edges", "ecc"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_recovers_a_moved_degraded_board(seed: int, refine: str) -> None:
    board = generate_board(seed)
    moved = move_and_degrade(board.template, np.random.default_rng(seed))
    reg = register(moved.image, board.template, RegistrationConfig(refine=refine))
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


def test_affine_motion_follows_a_scan_that_is_stretched() -> None:
    """Scans differ in scale, not only in shift and rotation: the affine model follows a 0.4% stretch that the
    rigid one cannot."""
    import cv2

    board = generate_board(7)
    stretch = np.array([[1.004, 0.0, 1.5], [0.0, 0.998, -1.0]])
    tested = cv2.warpAffine(board.template, stretch, (640, 640), borderMode=cv2.BORDER_REPLICATE)
    truth = np.linalg.inv(np.vstack([stretch, [0, 0, 1]]))[:2]
    errors = {}
    for motion in ("affine", "euclidean"):
        reg = register(tested, board.template, RegistrationConfig(motion=motion))
        errors[motion] = float(np.abs(reg.matrix @ CORNERS - truth @ CORNERS).max())
    assert errors["affine"] < 0.5 < errors["euclidean"]


def test_implausible_stretch_falls_back_to_identity() -> None:
    """An estimate that stretches an axis by more than max_scale_change is a failure, not a scan."""
    import cv2

    board = generate_board(8)
    squashed = cv2.warpAffine(board.template, np.array([[1.12, 0, -38.4], [0, 1, 0]]), (640, 640))  # 12% in x
    reg = register(squashed, board.template, RegistrationConfig(max_scale_change=0.05))
    assert not reg.ok and np.allclose(reg.matrix, [[1, 0, 0], [0, 1, 0]])
    with pytest.raises(ConfigError, match="registration.motion"):
        RegistrationConfig(motion="projective")
    with pytest.raises(ConfigError, match="registration.refine"):
        RegistrationConfig(refine="sift")


def test_edge_refinement_declines_what_it_cannot_determine() -> None:
    """Stripes in one direction fix no position along them, and a blank image has no edges: the refinement
    says so (None), and register keeps the coarser estimate, flags it, and stays finite."""
    from pcb_inspect.inspect.registration import _refine_on_edges

    stripes = np.zeros((160, 160), np.float32)
    stripes[:, ::8] = 255.0
    start = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    assert _refine_on_edges(stripes, stripes, start, 10, 1e-2, 3) is None
    blank = np.full((160, 160), 90.0, np.float32)
    assert _refine_on_edges(blank, blank, start, 10, 1e-2, 3) is None
    image = np.zeros((640, 640), np.uint8)
    image[:, ::32] = 255
    reg = register(image, image)
    assert np.all(np.isfinite(reg.matrix))


def test_valid_region_is_the_template_extent_mapped_into_the_tested_image() -> None:
    from pcb_inspect.inspect.registration import Registration, covers_image, valid_region

    identity = Registration(np.array([[1.0, 0, 0], [0, 1, 0]]), True)
    assert covers_image((64, 64), identity) and valid_region((64, 64), identity).all()
    shifted = Registration(np.array([[1.0, 0, 5], [0, 1, -3]]), True)  # tested (x, y) shows template (x+5, y-3)
    assert not covers_image((64, 64), shifted)
    mask = valid_region((64, 64), shifted)
    expected = np.zeros((64, 64), np.uint8)
    expected[3:, :59] = 1
    assert np.array_equal(mask, expected)
