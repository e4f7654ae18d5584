"""Thm 4.1 at finite width (symflow.coupled): the proof's coupled initialisation, checked exactly.
A network trained on tau D from W equals the network trained on D from W tau, step for step, for
every (architecture, group) pair the theorem claims; where it does not claim one, the first layer
cannot absorb tau at all."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from symflow.architectures import ModelHP
from symflow.coupled import COUPLING_TOLERANCE, NotCoupled, claimed_pairs, couple_first_layer, coupled_pair
from symflow.train.model import build_model, first_layer_index, init_key, init_params

HP = ModelHP(depth=2, weight_variance=2.0, bias_variance=0.01, filter_size=3)
SHAPE = (4, 4, 3)


@pytest.fixture(scope="module", autouse=True)
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def data(seed=0, n=16):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + SHAPE)
    y = np.eye(10)[rng.integers(0, 10, n)]
    return x, y, rng.standard_normal((8,) + SHAPE)


def first_weights(arch, width):
    model = build_model(arch, HP, width)
    params = init_params(model.init_fn, init_key(0), SHAPE, dtype=np.float64)
    return params[first_layer_index(params)][0]


@pytest.mark.parametrize("arch,transform,width", [("FCN", "o3d", 16), ("LCN", "o3_pixel", 4), ("VEC", "o3_shared", 4)])
def test_a_claimed_pair_trains_identically(arch, transform, width):
    x, y, xt = data()
    # NN+-like: a large step, momentum and L2 (the identity holds for any learning rate)
    pair = coupled_pair(arch, HP, width, transform, 3, x, y, xt, lr=2.0, l2=1e-3, momentum=0.9, batch_size=8, steps=6)
    assert pair.coupling_residual < 1e-12
    assert pair.max_rel_diff < 1e-10, (arch, transform, pair)


@pytest.mark.parametrize("arch,transform", [("FCN", "perm"), ("FCN", "o3_pixel"), ("LCN", "o3_shared"),
                                            ("GAP", "o3_shared"), ("LAP4", "o3_shared")])
def test_every_claimed_first_layer_absorbs_tau(arch, transform):
    _, residual = couple_first_layer(arch, HP, 4, first_weights(arch, 4), transform, 3, SHAPE)
    assert residual < 1e-12


@pytest.mark.parametrize("arch,transform", [("VEC", "o3_pixel"), ("GAP", "o3_pixel"), ("LCN", "o3d"),
                                            ("VEC", "perm")])
def test_a_pair_the_theorem_does_not_claim_cannot_be_coupled(arch, transform):
    with pytest.raises(NotCoupled, match="cannot absorb"):
        couple_first_layer(arch, HP, 4, first_weights(arch, 4), transform, 3, SHAPE)


def test_the_check_sees_a_wrong_coupling():
    # negative controls: without the coupling (W on tau D against W on D) or with the tau of
    # another seed, the two trained networks differ by far more than the tolerance
    import symflow.coupled as cp

    x, y, xt = data()
    real = cp.couple_first_layer
    for wrong in (lambda arch, hp, width, w, t, seed, shape: (np.asarray(w), 0.0),
                  lambda arch, hp, width, w, t, seed, shape: real(arch, hp, width, w, t, seed + 1, shape)):
        cp.couple_first_layer = wrong
        try:
            pair = coupled_pair("FCN", HP, 16, "o3d", 3, x, y, xt, lr=0.5, l2=0.0, momentum=0.9, batch_size=8, steps=3)
        finally:
            cp.couple_first_layer = real
        assert pair.max_rel_diff > 1e-2, pair


def test_the_coupled_weights_have_the_same_norm():
    # tau orthogonal: ||W tau|| = ||W||, so the L2 term and the init's distribution agree
    w = first_weights("FCN", 16)
    coupled, _ = couple_first_layer("FCN", HP, 16, w, "o3d", 5, SHAPE)
    assert np.linalg.norm(coupled) == pytest.approx(np.linalg.norm(w), rel=1e-12)


def test_claimed_pairs_follow_the_registry():
    pairs = claimed_pairs(["FCN", "VEC", "GAP"], ["identity", "o3_shared", "o3_pixel", "perm"])
    assert pairs == [("FCN", "o3_shared"), ("FCN", "o3_pixel"), ("FCN", "perm"), ("VEC", "o3_shared"),
                     ("GAP", "o3_shared")]
    assert COUPLING_TOLERANCE < 1e-3
