"""The finite-width training stage checked against the paper, not only against itself.

* Theorem 4.1 through its proof (App. D, S7-S14): a network trained on tau-rotated
  data from theta_0 and the coupled network theta^tau = tau* theta_0 (first layer
  only) trained on the original data stay coupled at every SGD step, with momentum
  and L2, whenever tau* theta_0 lies in the architecture's parameter space.
* The empirical NTK of the finite network approaches the kernel of the same stax
  definition (what the kernel stage computes) as the width grows.
* The loss, L2 and momentum are those of App. B.1.

Everything runs on tiny shapes (4x4 images, depth 2, widths of a few channels); the
coupling tests in float64, so that the identities hold to ~1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from symflow import train as T  # noqa: E402
from symflow._nt import stax  # noqa: E402
from symflow.architectures import ARCHITECTURES, ModelHP  # noqa: E402
from symflow.groups import sample_element, transform_images  # noqa: E402

HP = ModelHP(depth=2)
R = 4  # image side: 3x3 circular neighbourhoods of distinct pixels need R >= 3
WIDTH = 3
TAU_SEED = 3


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, R, R, 3))
    labels = rng.integers(0, 10, n)
    return x, np.eye(10)[labels]


def _train(apply_fn, params, x, y, steps: int = 9, lr: float = 0.05, l2: float = 1e-2, batch: int = 4):
    """The project's own loop: SGD + momentum 0.9 + L2 (exaggerated so that it matters)."""
    state = T.create_train_state(apply_fn, params, lr, 0.9, l2)
    state, _, bad = T.train_steps(state, jnp.asarray(x), jnp.asarray(y), T.order_key(0), steps, batch)
    assert int(bad) < 0
    return state.params


def _tau_matrix(transform: str) -> np.ndarray:
    """M with flatten(tau x) = M flatten(x), flattening (H, W, C) row-major as stax.Flatten."""
    d = R * R * 3
    images = transform_images(transform, TAU_SEED, np.eye(d).reshape(d, R, R, 3))
    return images.reshape(d, d).T


def _selection(layer) -> np.ndarray:
    """E[p] (27 x 3R^2): the 3x3x3 patch features a 27-channel layer with identity weights
    reads at output pixel p, in that layer's own feature order."""
    init_fn, apply_fn, _ = layer
    _, (W, _) = init_fn(jax.random.PRNGKey(0), (1, R, R, 3))
    eye = np.eye(27)
    W = np.broadcast_to(eye, W.shape) if W.ndim == 4 and W.shape[:2] == (R, R) else eye.reshape(3, 3, 3, 27)
    scale = np.sqrt(27.0)  # undo the NTK normalisation W_std / sqrt(fan_in) with W_std = 1
    jac = jax.jacobian(lambda x: apply_fn((jnp.asarray(W), None), x[None])[0] * scale)(jnp.zeros((R, R, 3)))
    return np.asarray(jac).reshape(R * R, 27, R * R * 3)


def _lc_layer(width):
    return stax.ConvLocal(width, (3, 3), padding="CIRCULAR", W_std=1.0, b_std=None, parameterization="ntk")


E_LC = None
E_CONV = None


def _selections():
    global E_LC, E_CONV
    if E_LC is None:
        E_LC = _selection(_lc_layer(27))
        E_CONV = _selection(stax.Conv(27, (3, 3), padding="CIRCULAR", W_std=1.0, b_std=None, parameterization="ntk"))
    return E_LC, E_CONV


def _couple_dense(W, M):
    return M.T @ W  # x' W = x M^T W


def _couple_conv_shared(W, transform):
    q = sample_element(transform, TAU_SEED, (R, R, 3))["q"]
    return np.einsum("ji,hwjn->hwin", q, W)  # W_beta -> Q^T W_beta for every offset beta


def _couple_lc(W, M):
    """W[p] (27 x n) -> T_p^T W[p], T_p = E_p M E_p^T: tau acting on the patch of pixel p."""
    E, _ = _selections()
    out = np.empty_like(W)
    Wf = W.reshape(R * R, 27, -1)
    for p in range(R * R):
        T_p = E[p] @ M @ E[p].T
        out.reshape(R * R, 27, -1)[p] = T_p.T @ Wf[p]
    return out


def _conv_as_lc(W):
    """The locally connected weights (R, R, 27, n) equal to the conv weights W (3, 3, 3, n)."""
    E_lc, E_cv = _selections()
    Wf = W.reshape(27, -1)
    return np.stack([E_lc[p] @ E_cv[p].T @ Wf for p in range(R * R)]).reshape(R, R, 27, -1)


def _coupled(params, i, W_new):
    params = list(params)
    params[i] = (jnp.asarray(W_new), *params[i][1:])
    return params


def _assert_close(a, b, rtol=1e-9, atol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _max_rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize(
    "arch, transform",
    [("FCN", "o3d"), ("LCN", "o3_pixel"), ("VEC", "o3_shared"), ("GAP", "o3_shared")],
)
def test_thm41_coupled_init_identity(arch, transform):
    """App. D: train on tau X from theta_0 == train on X from theta^tau = tau* theta_0.

    tau* acts on the first layer only: W M for FCN (any M in O(3d)); Q^T W_beta for
    every conv offset (VEC, GAP with O(3) x I_d); T_p^T W_p per output pixel for the
    unshared LCN layer (O(3)^d). The identity must hold after several SGD steps with
    momentum and L2: the other layers equal, the first coupled, the outputs on
    (tau x_test, x_test) equal. A control shows the steps moved the network.
    """
    with jax.enable_x64(True):
        model = T.build_model(arch, HP, WIDTH)
        x, y = _data(12, 0)
        x_test, _ = _data(5, 1)
        tx, tx_test = (transform_images(transform, TAU_SEED, a) for a in (x, x_test))
        p0 = T.init_params(model.init_fn, T.init_key(0, 0), (R, R, 3), dtype=jnp.float64)
        i = T.first_layer_index(p0)
        W0 = np.asarray(p0[i][0])
        M = _tau_matrix(transform)
        couple = {
            "FCN": lambda W: _couple_dense(W, M),
            "LCN": lambda W: _couple_lc(W, M),
            "VEC": lambda W: _couple_conv_shared(W, transform),
            "GAP": lambda W: _couple_conv_shared(W, transform),
        }[arch]
        pc = _coupled(p0, i, couple(W0))
        f = jax.jit(model.apply_fn)
        _assert_close(f(p0, tx_test), f(pc, x_test))  # t = 0

        pa = _train(model.apply_fn, p0, tx, y)  # rotated data, theta_0
        pb = _train(model.apply_fn, pc, x, y)  # clean data, tau* theta_0
        _assert_close(f(pa, tx_test), f(pb, x_test))
        _assert_close(couple(np.asarray(pa[i][0])), pb[i][0])  # theta^tau_t = tau* theta_t (S9)
        for la, lb in zip(pa[i + 1 :], pb[i + 1 :]):  # gamma^tau_t = gamma_t
            for u, v in zip(la, lb):
                _assert_close(u, v)

        moved = _max_rel(f(pa, tx_test), f(p0, tx_test))
        assert moved > 1e-2, f"SGD barely moved the outputs ({moved:.2e}): the test would be vacuous"
        uncoupled = _train(model.apply_fn, p0, x, y)  # clean data from theta_0 itself
        assert _max_rel(f(uncoupled, x_test), f(pa, tx_test)) > 1e-3


def test_thm41_vec_o3_pixel_needs_a_locally_connected_first_layer():
    """Why VEC_n is not O(3)^d-invariant (Thm 4.1 at finite width).

    For tau in O(3)^d, the coupled first layer tau* W of a conv is W_beta -> Q_{p+beta}^T
    W_beta: a different filter at every pixel, a *locally connected* layer, outside the
    conv's parameter space. So:

    1. the network H = (LC first layer with a shared bias, then VEC's layers) with
       the conv weights written as LC weights is VEC_n itself (checked at init);
    2. H obeys the coupled-init identity for O(3)^d (the proof of App. D applies: its
       first layer is unshared): H on tau X from V_0 == H on X from tau* V_0 after
       several SGD steps;
    3. VEC_n on tau X from theta_0 and H on X from the coupled init tau* theta_0 agree
       at step 0 but not after SGD: a shared filter receives the gradient summed over
       pixels, the unshared one per pixel, so the coupling of S9 breaks (S14 needs
       d theta^tau / d theta = tau, which a weight-shared layer does not provide).
    """
    with jax.enable_x64(True):
        vec = T.build_model("VEC", HP, WIDTH)
        transform = "o3_pixel"
        M = _tau_matrix(transform)
        x, y = _data(12, 0)
        x_test, _ = _data(5, 1)
        tx, tx_test = (transform_images(transform, TAU_SEED, a) for a in (x, x_test))
        p0 = T.init_params(vec.init_fn, T.init_key(0, 0), (R, R, 3), dtype=jnp.float64)
        (W0, b0), rest0 = p0[0], p0[1:]

        # H: the first layer locally connected (bias shared, as VEC's), the rest exactly VEC's
        _, lc_apply, _ = _lc_layer(WIDTH)
        body = []
        for _ in range(HP.depth - 1):
            body += [
                stax.Conv(WIDTH, (3, 3), padding="CIRCULAR", W_std=HP.W_std, b_std=HP.b_std, parameterization="ntk"),
                stax.Relu(),
            ]
        _, rest_apply, _ = stax.serial(
            stax.Relu(), *body, stax.Flatten(), stax.Dense(10, W_std=HP.W_std, b_std=HP.b_std, parameterization="ntk")
        )

        def h_apply(params, x):
            (V, b), rest = params
            return rest_apply(rest, HP.W_std * lc_apply((V, None), x) + HP.b_std * b)

        def h_params(V):
            return [(jnp.asarray(V), b0), list(rest0)]

        f_vec, f_h = jax.jit(vec.apply_fn), jax.jit(h_apply)
        V0 = _conv_as_lc(np.asarray(W0))
        _assert_close(f_h(h_params(V0), x_test), f_vec(p0, x_test))  # 1. H is VEC_n

        # 2. Thm 4.1 for H and O(3)^d
        ha = _train(h_apply, h_params(V0), tx, y)
        hb = _train(h_apply, h_params(_couple_lc(V0, M)), x, y)
        _assert_close(f_h(ha, tx_test), f_h(hb, x_test))
        _assert_close(_couple_lc(np.asarray(ha[0][0]), M), hb[0][0])

        # 3. VEC_n itself: coupled at step 0, apart after SGD
        coupled0 = h_params(_couple_lc(V0, M))
        _assert_close(f_h(coupled0, x_test), f_vec(p0, tx_test))
        va = _train(vec.apply_fn, p0, tx, y)
        gap = _max_rel(f_vec(va, tx_test), f_h(hb, x_test))
        moved = _max_rel(f_vec(va, tx_test), f_vec(p0, tx_test))
        assert (
            gap > 1e-3 * max(moved, 1.0) and gap > 1e-4
        ), f"VEC_n on O(3)^d-rotated data stayed coupled (gap {gap:.2e}, moved {moved:.2e})"


@pytest.mark.parametrize("arch, narrow, wide", [("FCN", 16, 512), ("VEC", 8, 256)])
def test_empirical_ntk_approaches_the_kernel(arch, narrow, wide):
    """The finite network's NTK (logit-traced, mean of a few inits) -> kernel_fn's NTK."""
    x = jnp.asarray(np.random.default_rng(5).standard_normal((6, R, R, 3)), jnp.float32)
    err = {}
    for width in (narrow, wide):
        init_fn, apply_fn, kernel_fn = ARCHITECTURES.get(arch).stax(HP, width)
        exact = np.asarray(kernel_fn(x, x, "ntk"), np.float64)
        ntk_fn = T.empirical_ntk_fn(apply_fn)
        emp = np.mean(
            [np.asarray(ntk_fn(x, T.init_params(init_fn, jax.random.PRNGKey(s), (R, R, 3)))) for s in range(3)], axis=0
        )
        err[width] = np.linalg.norm(emp - exact) / np.linalg.norm(exact)
    assert err[wide] < 0.1, err
    assert err[wide] < 0.5 * err[narrow], err


def test_loss_l2_and_momentum_are_those_of_appendix_b1():
    """L = 1/(2K|B|) sum |f - y|^2 + l2/2 |theta|^2; v <- 0.9 v + grad; theta <- theta - lr v."""
    with jax.enable_x64(True):
        model = T.build_model("FCN", HP, 5)
        x, y = _data(4, 0)
        x, y = jnp.asarray(x), jnp.asarray(y)
        p0 = T.init_params(model.init_fn, T.init_key(0, 0), (R, R, 3), dtype=jnp.float64)
        lr, l2, mom = 0.03, 1e-2, 0.9

        def loss(p):
            f = model.apply_fn(p, x)
            reg = sum(jnp.sum(a**2) for a in jax.tree_util.tree_leaves(p))
            return jnp.sum((f - y) ** 2) / (2 * 10 * x.shape[0]) + l2 / 2 * reg

        state = T.create_train_state(model.apply_fn, p0, lr, mom, l2)
        grad = jax.jit(jax.grad(loss))
        p, v = p0, jax.tree_util.tree_map(jnp.zeros_like, p0)
        for _ in range(3):
            state, batch_loss = T.train_step(state, x, y)
            np.testing.assert_allclose(
                batch_loss, T.mse_loss(model.apply_fn(p, x), y), rtol=1e-12
            )  # reported loss: the data term
            g = grad(p)
            v = jax.tree_util.tree_map(lambda a, b: mom * a + b, v, g)
            p = jax.tree_util.tree_map(lambda a, b: a - lr * b, p, v)
        for a, b in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(p)):
            _assert_close(a, b, rtol=1e-11, atol=1e-13)


def test_uniform_first_layer_has_the_gaussian_variance():
    """Fig. S5: U(-sqrt 3, sqrt 3) in the first weight-bearing layer, everything else unchanged."""
    model = T.build_model("VEC", ModelHP(depth=2), 32)
    key = T.init_key(0, 0)
    g = T.init_params(model.init_fn, key, (R, R, 3))
    u = T.init_params(model.init_fn, key, (R, R, 3), first_layer="uniform")
    W = np.asarray(u[0][0])
    assert np.abs(W).max() <= np.sqrt(3) and np.abs(W).max() > 1.6
    assert abs(W.var() - 1.0) < 0.1 and abs(np.asarray(g[0][0]).var() - 1.0) < 0.2
    assert not np.allclose(W, g[0][0])
    np.testing.assert_array_equal(u[0][1], g[0][1])  # its bias stays Gaussian
    for a, b in zip(jax.tree_util.tree_leaves(u[1:]), jax.tree_util.tree_leaves(g[1:])):
        np.testing.assert_array_equal(a, b)
    fcn = T.build_model("FCN", ModelHP(depth=2), 8)
    p = T.init_params(fcn.init_fn, key, (R, R, 3), first_layer="uniform")
    assert T.first_layer_index(p) == 1 and np.abs(np.asarray(p[1][0])).max() <= np.sqrt(3)


def test_max_learning_rate_is_neural_tangents_formula():
    """nt.predict.max_learning_rate: 2 (1 + momentum) * factor / lambda_max."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 7))
    k = a @ a.T
    lam = np.linalg.eigvalsh(k)[-1]
    assert T.max_learning_rate(k) == pytest.approx(2 * 7 / lam, rel=1e-12)
    assert T.max_learning_rate(k, y_train_size=70, momentum=0.9) == pytest.approx(2 * 1.9 * 70 / lam, rel=1e-12)
