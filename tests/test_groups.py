"""The transform groups: would these tests catch a wrong transform?"""

from __future__ import annotations

import numpy as np
import pytest

from symflow.groups import GROUPS, canonical_seed, parse_spec, sample_element, spec_id, transform_images

PAPER_GROUPS = ["identity", "o3_shared", "o3_pixel", "perm", "o3d"]
RANDOM_GROUPS = ["o3_shared", "o3_pixel", "perm", "o3d", "so3_path-t0.7"]


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((5, 4, 4, 3))


@pytest.fixture(scope="module")
def x2():
    return np.random.default_rng(1).standard_normal((3, 4, 4, 3))


def gram_pixel_pairs(a, b):
    """<a_p, b_q> for every image pair and pixel pair: (Na, Nb, d, d)."""
    na, nb = len(a), len(b)
    return np.einsum("npc,mqc->nmpq", a.reshape(na, -1, 3), b.reshape(nb, -1, 3))


@pytest.mark.parametrize("spec", PAPER_GROUPS + ["so3_path-t0.0", "so3_path-t0.3", "so3_path-t1.0"])
def test_orthogonal_norms_preserved(spec, x):
    y = transform_images(spec, 3, x)
    assert y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_allclose(
        np.linalg.norm(y.reshape(len(y), -1), axis=1), np.linalg.norm(x.reshape(len(x), -1), axis=1), rtol=1e-12
    )


@pytest.mark.parametrize("spec", RANDOM_GROUPS)
def test_deterministic_per_seed_and_different_across_seeds(spec, x):
    a = transform_images(spec, 7, x)
    b = transform_images(spec, 7, x)
    c = transform_images(spec, 8, x)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_groups_with_same_seed_differ(x):
    """Two groups never share a random stream (o3_pixel's first Q is not o3_shared's Q)."""
    q_shared = sample_element("o3_shared", 0, x.shape[1:])["q"]
    q_pixel = sample_element("o3_pixel", 0, x.shape[1:])["q"][0]
    assert np.abs(q_shared - q_pixel).max() > 1e-3


def test_o3_shared_preserves_every_pixel_pair_product(x, x2):
    g0 = gram_pixel_pairs(x, x2)
    g1 = gram_pixel_pairs(transform_images("o3_shared", 1, x), transform_images("o3_shared", 1, x2))
    np.testing.assert_allclose(g1, g0, atol=1e-12)
    assert np.abs(transform_images("o3_shared", 1, x) - x).max() > 1e-2  # and it does move the images


def test_o3_pixel_preserves_same_pixel_products_only(x, x2):
    g0 = gram_pixel_pairs(x, x2)
    g1 = gram_pixel_pairs(transform_images("o3_pixel", 1, x), transform_images("o3_pixel", 1, x2))
    d = g0.shape[-1]
    same = np.eye(d, dtype=bool)
    np.testing.assert_allclose(g1[..., same], g0[..., same], atol=1e-12)
    assert np.abs(g1[..., ~same] - g0[..., ~same]).max() > 1e-2


@pytest.mark.parametrize("spec", ["perm", "o3d"])
def test_perm_and_o3d_preserve_only_the_global_product(spec, x, x2):
    g0 = gram_pixel_pairs(x, x2)
    a, b = transform_images(spec, 1, x), transform_images(spec, 1, x2)
    g1 = gram_pixel_pairs(a, b)
    # the global inner product <x, x'> is preserved ...
    np.testing.assert_allclose(
        a.reshape(len(a), -1) @ b.reshape(len(b), -1).T, x.reshape(len(x), -1) @ x2.reshape(len(x2), -1).T, atol=1e-12
    )
    # ... but not the same-pixel products (so neither o3_pixel's nor o3_shared's invariant)
    same = np.eye(g0.shape[-1], dtype=bool)
    assert np.abs(g1[..., same] - g0[..., same]).max() > 1e-2


def test_perm_is_a_permutation(x):
    y = transform_images("perm", 4, x)
    np.testing.assert_array_equal(np.sort(y.reshape(len(y), -1), axis=1), np.sort(x.reshape(len(x), -1), axis=1))


def test_identity_is_identity_and_seed_free(x):
    np.testing.assert_array_equal(transform_images("identity", 5, x), x)
    assert canonical_seed("identity", 5) == 0 and canonical_seed("o3_pixel", 5) == 5


def test_so3_path_starts_at_identity_and_is_a_rotation_path(x):
    np.testing.assert_allclose(transform_images("so3_path-t0.0", 2, x), x, atol=1e-14)
    for t in (0.1, 0.5, 1.0):
        q = sample_element(f"so3_path-t{t}", 2, x.shape[1:])["q"]
        eye = np.broadcast_to(np.eye(3), q.shape)
        np.testing.assert_allclose(q @ np.swapaxes(q, -1, -2), eye, atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(q), 1.0, atol=1e-12)  # SO(3), a path from I


def test_so3_path_is_continuous_in_t(x):
    ts = np.linspace(0, 1, 41)
    ys = [transform_images(spec_id("so3_path", t), 2, x) for t in ts]
    steps = [np.abs(b - a).max() for a, b in zip(ys, ys[1:])]
    # |d tau_t / dt| <= max rotation angle (pi) times |x|: small steps for small dt
    assert max(steps) < np.pi * np.abs(x).max() * np.sqrt(3) * (ts[1] - ts[0]) * 1.01
    assert np.abs(ys[-1] - ys[0]).max() > 0.5  # and it goes somewhere


def test_so3_path_at_one_is_spread_over_rotation_angles():
    """tau_1 is Haar on SO(3): rotation angles follow (1 - cos a)/pi, mean pi/2 + 2/pi."""
    q = sample_element("so3_path-t1.0", 0, (64, 64, 3))["q"]
    angles = np.arccos(np.clip((np.trace(q, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    assert abs(angles.mean() - (np.pi / 2 + 2 / np.pi)) < 0.05


def test_o3_shared_matrix_is_haar_like():
    """Haar O(3): determinant +1 and -1 equally often, E[Q] = 0."""
    qs = np.stack([sample_element("o3_shared", s, (2, 2, 3))["q"] for s in range(400)])
    dets = np.linalg.det(qs)
    np.testing.assert_allclose(np.abs(dets), 1, atol=1e-12)
    assert 0.4 < (dets > 0).mean() < 0.6
    assert np.abs(qs.mean(0)).max() < 0.15


def test_specs_parse_and_refuse():
    assert parse_spec("so3_path-t0.25").t == 0.25
    assert parse_spec("o3_pixel").t is None
    assert spec_id("so3_path", 1) == "so3_path-t1.0"
    for bad, words in [("so3_path", "give its t"), ("o3d-t0.5", "takes no t"), ("o3pixel", "did you mean"),
                       ("so3_path-t1.5", "[0, 1]"), ("x y", "bad transform spec")]:
        with pytest.raises((ValueError, KeyError), match=None) as info:
            parse_spec(bad)
        assert words in str(info.value)


def test_registry_has_the_paper_groups():
    assert set(PAPER_GROUPS + ["so3_path"]) <= set(GROUPS.names())
