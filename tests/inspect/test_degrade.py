"""The camera model must report its own move exactly, or registration tests and moved ground truth lie."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.records import GroundTruth
from pcb_inspect.inspect.degrade import Degraded, move_and_degrade, transform_box, transform_ground_truth

CLEAN = {"blur_sigma": (0.0, 0.0), "noise_sigma": (0.0, 0.0), "gain": (1.0, 1.0), "offset": (0.0, 0.0)}


def _dot(h: int, w: int, x: float, y: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.rint(220 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))).astype(np.uint8)


def _centroid(img: np.ndarray) -> np.ndarray:
    m = cv2.moments(img.astype(np.float32))
    return np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]])


@pytest.mark.parametrize("seed", range(6))
def test_matrix_predicts_where_a_dot_lands(seed: int) -> None:
    h, w = 200, 260
    for x, y in ((40.0, 50.0), (210.0, 160.0), (129.5, 99.5)):
        moved = move_and_degrade(_dot(h, w, x, y), np.random.default_rng(seed), max_shift_px=4.0,
                                 max_angle_deg=3.0, **CLEAN)
        predicted = moved.matrix @ np.array([x, y, 1.0])
        assert np.linalg.norm(_centroid(moved.image) - predicted) < 0.5, (seed, x, y)


def test_matrix_is_rotation_about_centre_plus_shift() -> None:
    img = np.zeros((120, 160), np.uint8)
    d = move_and_degrade(img, np.random.default_rng(1), max_shift_px=3.0, max_angle_deg=2.0)
    assert d.matrix.shape == (2, 3)
    assert abs(d.shift[0]) <= 3.0 and abs(d.shift[1]) <= 3.0 and abs(d.angle) <= 2.0
    centre = np.array([(160 - 1) / 2, (120 - 1) / 2, 1.0])
    assert np.allclose(d.matrix @ centre, centre[:2] + np.array(d.shift))
    a = d.matrix[:, :2]
    assert np.isclose(np.linalg.det(a), 1.0)
    assert np.isclose(math.degrees(math.atan2(a[0, 1], a[0, 0])), d.angle)


def test_zero_motion_is_identity() -> None:
    img = (np.random.default_rng(0).random((64, 96)) * 255).astype(np.uint8)
    d = move_and_degrade(img, np.random.default_rng(0), max_shift_px=0.0, max_angle_deg=0.0, **CLEAN)
    assert np.allclose(d.matrix, [[1, 0, 0], [0, 1, 0]])
    assert np.array_equal(d.image, img)
    truth = [GroundTruth("open", (3, 4, 30, 40)), GroundTruth("spur", (0, 0, 96, 64))]
    assert [transform_box(gt.box, d.matrix, img.shape) for gt in truth] == [gt.box for gt in truth]
    assert transform_ground_truth(truth, d.matrix, img.shape) == truth


def test_transform_box_moves_centre_keeps_size_and_clips() -> None:
    m = np.array([[1.0, 0.0, 3.4], [0.0, 1.0, -2.6]])
    assert transform_box((100, 100, 140, 120), m, (640, 640)) == (103, 97, 143, 117)
    assert transform_box((0, 1, 20, 21), m, (640, 640)) == (3, 0, 23, 18)  # clipped at the top
    assert transform_box((630, 630, 640, 640), np.array([[1.0, 0, 40], [0, 1, 0]]), (640, 640)) is None
    truth = [GroundTruth("copper", (630, 10, 640, 30)), GroundTruth("short", (10, 10, 50, 40))]
    moved = transform_ground_truth(truth, np.array([[1.0, 0, 40], [0, 1, 0]]), (640, 640, 3))
    assert moved == [GroundTruth("short", (50, 10, 90, 40))]


def test_transform_box_round_trips_through_inverse() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        d = move_and_degrade(np.zeros((640, 640), np.uint8), rng, **CLEAN)
        back = cv2.invertAffineTransform(d.matrix)
        box = tuple(int(v) for v in (rng.integers(20, 300), rng.integers(20, 300), 0, 0))
        box = (box[0], box[1], box[0] + int(rng.integers(20, 80)), box[1] + int(rng.integers(20, 80)))
        there = transform_box(box, d.matrix, (640, 640))
        again = transform_box(there, back, (640, 640))
        assert max(abs(a - b) for a, b in zip(again, box)) <= 1


def test_gain_offset_noise_stay_in_their_ranges() -> None:
    flat = np.full((256, 256), 128, np.uint8)
    rng = np.random.default_rng(2)
    for _ in range(12):
        d = move_and_degrade(flat, rng, blur_sigma=(0.0, 0.0), noise_sigma=(3.0, 6.0), gain=(0.9, 1.1),
                             offset=(-10.0, 10.0))
        assert 0.9 <= d.gain <= 1.1 and -10 <= d.offset <= 10 and 3.0 <= d.noise_sigma <= 6.0
        img = d.image.astype(float)
        assert abs(img.mean() - (128 * d.gain + d.offset)) < 0.5
        assert abs(img.std() - d.noise_sigma) < 0.1 * d.noise_sigma + 0.3
        assert 128 * 0.9 - 10 - 0.5 < img.mean() < 128 * 1.1 + 10 + 0.5


def test_output_is_uint8_clipped_and_seeded() -> None:
    img = np.full((50, 70), 250, np.uint8)
    a = move_and_degrade(img, np.random.default_rng(9), gain=(1.2, 1.2), offset=(20, 20))
    b = move_and_degrade(img, np.random.default_rng(9), gain=(1.2, 1.2), offset=(20, 20))
    assert isinstance(a, Degraded) and a.image.dtype == np.uint8 and a.image.shape == img.shape
    assert np.array_equal(a.image, b.image) and (a.image == 255).mean() > 0.9
    assert 0.3 <= move_and_degrade(img, np.random.default_rng(3)).blur_sigma <= 1.0


def test_border_is_replicated_not_black() -> None:
    img = np.full((80, 80), 200, np.uint8)
    d = move_and_degrade(img, np.random.default_rng(4), max_shift_px=4.0, max_angle_deg=0.5, **CLEAN)
    assert d.image.min() == 200


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_shift_px": -1.0}, "max_shift_px"),
        ({"max_angle_deg": 90.0}, "max_angle_deg"),
        ({"max_angle_deg": float("nan")}, "max_angle_deg"),
        ({"blur_sigma": (1.0, 0.5)}, "blur_sigma"),
        ({"noise_sigma": (-1.0, 2.0)}, "noise_sigma"),
        ({"gain": (0.0, 1.0)}, "gain"),
        ({"gain": "high"}, "gain"),
        ({"offset": (-300.0, 0.0)}, "offset"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        move_and_degrade(np.zeros((10, 10), np.uint8), np.random.default_rng(0), **kwargs)


@pytest.mark.parametrize("image", [np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.float32)])
def test_bad_image_raises(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="image"):
        move_and_degrade(image, np.random.default_rng(0))
