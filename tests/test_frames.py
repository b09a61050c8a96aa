"""tami.frames: the one quantisation rule, luma weights and image writing every part uses."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tami.errors import InputError
from tami.frames import LUMA_709, luma, to_uint, to_uint8, write_image


def test_quantisation_clips_and_rounds_half_to_even():
    x = np.array([-0.2, 0.5 / 255, 1.5 / 255, 2.5 / 255, 0.999, 1.7], dtype=np.float64)
    assert to_uint8(x).tolist() == [0, 0, 2, 2, 255, 255]
    frame = np.stack([x[:3], x[3:], x[:3]], axis=-1)[None]  # (1, 3, 3)
    assert np.array_equal(to_uint(frame, 8), to_uint8(frame))
    assert to_uint(np.full((1, 1, 3), 257 * 7, np.uint16), 8).tolist() == [[[7, 7, 7]]]
    assert to_uint(np.full((1, 1, 3), 1.0, np.float32), 16).tolist() == [[[65535] * 3]]
    with pytest.raises(InputError, match=r"expected \(H, W, 3\) RGB"):
        to_uint(np.zeros((4, 4)), 8)


def test_luma_uses_rec709_weights():
    assert LUMA_709 == (0.2126, 0.7152, 0.0722)
    rgb = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    assert luma(rgb).tolist() == pytest.approx(list(LUMA_709))


def test_write_image_round_trips_and_leaves_nothing_on_failure(tmp_path):
    frame = np.linspace(0, 1, 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    path = write_image(tmp_path / "a.png", frame)
    assert np.array_equal(cv2.imread(str(path))[:, :, ::-1], to_uint8(frame))
    deep = cv2.imread(str(write_image(tmp_path / "b.png", frame, bits=16)), cv2.IMREAD_UNCHANGED)
    assert deep.dtype == np.uint16 and np.array_equal(deep[:, :, ::-1], to_uint(frame, 16))
    assert np.array_equal(np.load(write_image(tmp_path / "c.npy", frame * 2)), np.clip(frame * 2, 0, 1))
    with pytest.raises(InputError, match="cannot encode an image as .xyz"):
        write_image(tmp_path / "d.xyz", frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.npy"]
