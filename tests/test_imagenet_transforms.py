"""The ImageNet transforms on device: the same tau as symflow.groups, orthogonal, fixed per seed."""

from __future__ import annotations

import numpy as np
import pytest

from symflow.groups import transform_images
from symflow.imagenet.transforms import device_transform, normalise

SHAPE = (16, 12, 3)


def batch(seed=0, n=5):
    return np.random.default_rng(seed).standard_normal((n, *SHAPE)).astype(np.float32)


@pytest.mark.parametrize("spec", ["identity", "o3_shared", "o3_pixel", "perm", "o3d", "so3_path-t0.5"])
def test_device_action_equals_the_cifar_groups(spec):
    x = batch()
    tau = device_transform(spec, 1, SHAPE)
    got = np.asarray(tau(x))
    np.testing.assert_allclose(got, transform_images(spec, 1, x.astype(np.float64)), atol=2e-5)


def test_o3_pixel_is_orthogonal_per_pixel_and_keeps_pixel_norms():
    tau = device_transform("o3_pixel", 2, SHAPE)
    q = np.asarray(tau.element["q"], np.float64)
    assert q.shape == (SHAPE[0] * SHAPE[1], 3, 3)
    np.testing.assert_allclose(q @ q.transpose(0, 2, 1), np.broadcast_to(np.eye(3), q.shape), atol=1e-6)
    assert np.std(q.reshape(len(q), -1), axis=0).min() > 0.1  # independent per pixel, not one shared Q
    x = batch(1)
    y = np.asarray(tau(x))
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)
    assert not np.allclose(y, x)


def test_perm_is_a_permutation_of_all_3d_coordinates():
    tau = device_transform("perm", 3, SHAPE)
    perm = np.asarray(tau.element["perm"])
    assert sorted(perm) == list(range(int(np.prod(SHAPE))))
    x = batch(2)
    y = np.asarray(tau(x))
    np.testing.assert_array_equal(np.sort(y.reshape(5, -1), axis=1), np.sort(x.reshape(5, -1), axis=1))
    # pixels are mixed across space and channel, not only within a pixel
    moved = perm.reshape(SHAPE)[..., 0] // 3 != np.arange(SHAPE[0] * SHAPE[1]).reshape(SHAPE[:2])
    assert moved.mean() > 0.9


def test_tau_is_fixed_per_seed():
    a, b, c = (device_transform("o3_pixel", s, SHAPE) for s in (5, 5, 6))
    np.testing.assert_array_equal(np.asarray(a.element["q"]), np.asarray(b.element["q"]))
    assert not np.allclose(np.asarray(a.element["q"]), np.asarray(c.element["q"]))


def test_o3d_at_imagenet_size_is_refused_and_unknown_groups_named():
    with pytest.raises(ValueError, match=r"o3d on \(224, 224, 3\) images needs a 150528 x 150528 matrix"):
        device_transform("o3d", 0, (224, 224, 3))
    with pytest.raises(Exception, match="unknown transform group 'o3_pixl'"):
        device_transform("o3_pixl", 0, SHAPE)


def test_normalise_uses_imagenet_mean_and_std():
    from symflow.imagenet.data import MEAN_RGB, STDDEV_RGB

    images = np.full((1, 2, 2, 3), 128, np.uint8)
    got = np.asarray(normalise(images, MEAN_RGB, STDDEV_RGB))
    np.testing.assert_allclose(got[0, 0, 0], (128 - np.array(MEAN_RGB)) / np.array(STDDEV_RGB), rtol=1e-6)
