"""The transform groups on any number of channels C (read from the image shape), on real
images: one-channel images are the shipped CIFAR-10 sample averaged over its colour channels.
For C = 1, O(1) = {+1, -1}: a sign for the whole image (o3_shared) or per pixel (o3_pixel).
And for C = 3, the draws are pinned: CIFAR-10's data must not move."""

from __future__ import annotations

import numpy as np
import pytest

from symflow.data import sample_images
from symflow.groups import element_rng, haar_orthogonal, sample_element, transform_images

RANDOM_GROUPS = ["o3_shared", "o3_pixel", "perm", "o3d"]
SEED = 0  # o3_shared draws -1 for one channel with this seed (so it moves the images)


@pytest.fixture(scope="module")
def rgb():
    return sample_images(12, 8)  # real images, (12, 8, 8, 3), standardised


@pytest.fixture(scope="module")
def gray(rgb):
    return rgb.mean(axis=-1, keepdims=True)  # (12, 8, 8, 1)


def flat(x):
    return x.reshape(len(x), -1)


def test_haar_orthogonal_of_size_one_is_a_fair_sign():
    """A Haar draw from O(1) = {+1, -1}: the sign of the normal draw, each half the time."""
    z = np.random.default_rng(3).standard_normal((4000, 1, 1))
    q = haar_orthogonal(np.random.default_rng(3), 1, (4000,))
    np.testing.assert_array_equal(q, np.sign(z))
    assert set(np.unique(q)) == {-1.0, 1.0} and 0.45 < (q > 0).mean() < 0.55


def test_one_channel_o3_shared_is_one_sign(gray):
    y = transform_images("o3_shared", SEED, gray)
    np.testing.assert_array_equal(y, -gray)
    # O(1) x I_d has two elements, so some seeds draw +1: the untransformed data
    signs = {float(sample_element("o3_shared", s, gray.shape[1:])["q"][0, 0]) for s in range(8)}
    assert signs == {-1.0, 1.0}


def test_one_channel_o3_pixel_is_a_sign_per_pixel(gray):
    y = transform_images("o3_pixel", SEED, gray)
    q = sample_element("o3_pixel", SEED, gray.shape[1:])["q"]
    assert q.shape == (64, 1, 1) and set(np.unique(q)) == {-1.0, 1.0}  # a sign per pixel, both occur
    sign = q.reshape(1, 8, 8, 1)
    np.testing.assert_array_equal(y, sign * gray)  # every value is x or -x, with its pixel's sign
    assert np.array_equal(y[:, sign[0, ..., 0] > 0], gray[:, sign[0, ..., 0] > 0])
    assert np.array_equal(y[:, sign[0, ..., 0] < 0], -gray[:, sign[0, ..., 0] < 0])


def test_one_channel_perm_permutes_the_pixels(gray):
    y = transform_images("perm", SEED, gray)
    perm = sample_element("perm", SEED, gray.shape[1:])["perm"]
    assert sorted(perm) == list(range(64))  # P(d), d = 64 pixels
    np.testing.assert_array_equal(flat(y), flat(gray)[:, perm])
    assert np.abs(y - gray).max() > 0.5


def test_one_channel_o3d_is_orthogonal(gray):
    y = transform_images("o3d", SEED, gray)
    q = sample_element("o3d", SEED, gray.shape[1:])["q"]
    assert q.shape == (64, 64)
    np.testing.assert_allclose(q @ q.T, np.eye(64), atol=1e-12)
    np.testing.assert_allclose(flat(y) @ flat(y).T, flat(gray) @ flat(gray).T, atol=1e-10)  # norms, inner products
    assert np.abs(y - gray).max() > 0.5


@pytest.mark.parametrize("c", [1, 2, 4])
@pytest.mark.parametrize("spec", RANDOM_GROUPS)
def test_any_channel_count(spec, c, rgb):
    """Real images with C channels (C <= 3: the first C colour channels; C = 4: RGB and their
    mean): shape, determinism, orthogonality, and the invariants each group keeps."""
    x = rgb[..., :c] if c <= 3 else np.concatenate([rgb, rgb.mean(-1, keepdims=True)], -1)
    y = transform_images(spec, SEED, x)
    assert y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_array_equal(y, transform_images(spec, SEED, x))
    np.testing.assert_allclose(flat(y) @ flat(y).T, flat(x) @ flat(x).T, atol=1e-10)
    # per-pixel products <x_p, x'_p> (summed over channels): kept by O(C) x I_d and O(C)^d
    same_pixel = np.einsum("nhwc,mhwc->nmhw", y, y) - np.einsum("nhwc,mhwc->nmhw", x, x)
    if spec in ("o3_shared", "o3_pixel"):
        assert np.abs(same_pixel).max() < 1e-10
    else:
        assert np.abs(same_pixel).max() > 1e-2


@pytest.mark.parametrize("c", [1, 2, 4])
def test_so3_path_needs_three_channels(c, rgb):
    x = rgb[..., :1].repeat(c, axis=-1)
    with pytest.raises(ValueError) as err:
        transform_images("so3_path-t0.5", SEED, x)
    msg = str(err.value)
    assert "\n" not in msg and "so3_path needs 3 channels" in msg and f"images have {c}" in msg


def test_three_channel_draws_are_pinned():
    """The elements CIFAR-10's data were always transformed by (seed 0, 2x2 images): a change
    in the generator calls or their order changes these numbers, and with them every result."""
    shape = (2, 2, 3)
    q = sample_element("o3_shared", 0, shape)["q"]
    np.testing.assert_allclose(
        q,
        [[-0.503434729281, -0.731383255262, 0.460034789201],
         [-0.826537703743, 0.562796824298, -0.009754939896],
         [-0.251771518733, -0.385147073834, -0.887847303241]],
        atol=1e-11,
    )
    np.testing.assert_array_equal(q, haar_orthogonal(element_rng("o3_shared", 0), 3))
    np.testing.assert_allclose(
        sample_element("o3_pixel", 0, shape)["q"][-1],
        [[0.630302355766, -0.339985837139, 0.697945965573],
         [-0.477219300405, 0.539433334943, 0.693738723493],
         [-0.612356660482, -0.770338437115, 0.177758298447]],
        atol=1e-11,
    )
    assert sample_element("perm", 0, shape)["perm"].tolist() == [8, 7, 5, 0, 11, 3, 1, 4, 9, 6, 2, 10]
    np.testing.assert_allclose(
        sample_element("o3d", 0, shape)["q"][0, :4], [0.217196430087, -0.225796433151, -0.304907874806, 0.266579238682],
        atol=1e-11,
    )
    np.testing.assert_allclose(
        sample_element("so3_path-t1.0", 0, shape)["a"][-1], [1.85351515501, -1.505762853428, 1.807060146361],
        atol=1e-11,
    )
