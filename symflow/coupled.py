"""Thm 4.1 at finite width, checked exactly: the coupled initialisation of its proof.

The proof of Thm 4.1 couples two training runs. A network whose first layer is linear in its
input, trained by SGD (momentum, L2 on the weights) on tau D from initial weights W, and the
same network trained on D from W tau (the first layer's weights with tau absorbed: W' such
that W'(x) = W(tau x) for every x) compute the same function at every step: the gradients
agree because tau is orthogonal, so ||W tau|| = ||W|| and the L2 term agrees too. Where the
architecture is invariant to tau's group, W tau lies in the architecture's weight space with
the same (Gaussian) distribution as W, which is why the two runs' test performance has the same
distribution; where it is not (VEC on O(3)^d: a per-pixel rotation cannot be absorbed by a shared
filter), no such W' exists.

:func:`couple_first_layer` finds W' for any first layer (dense, shared or unshared convolution)
by linear least squares over the basis images, and refuses when the residual shows that the
layer cannot absorb tau. :func:`coupled_pair` trains both runs and compares their test outputs;
:func:`run_coupled_audit` writes results/coupled_audit.csv (COUPLED_COLUMNS), one row per
(architecture, group, recipe) the theorem claims, which the claim
``thm41_finite_coupled_identity`` reads.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

# verdict: agrees | refutes | not_coupled (the first layer cannot absorb tau) | diverged (no comparison)
COUPLED_COLUMNS = ("dataset", "architecture", "width", "transform", "seed", "recipe", "m", "steps", "lr",
                   "coupling_residual", "max_abs_diff", "max_rel_diff", "tolerance", "verdict")
STEPS = 20  # SGD steps of each coupled pair: the identity holds at every step, so a few suffice
TOLERANCE = 1e-9  # relative difference of float64 test outputs after STEPS steps
COUPLING_TOLERANCE = 1e-5  # relative residual of the least-squares coupling that counts as exact (float32: ~2e-7)

_log = logging.getLogger("symflow.coupled")


class NotCoupled(ValueError):
    """The first layer cannot absorb tau: no W' with W'(x) = W(tau x) for every x."""


def first_layer(arch: str, hp, width: int):
    """(init_fn, apply_fn) of the first weight-bearing layer of the architecture's finite network,
    as its stax definition builds it (a flatten and a dense layer, or one convolution)."""
    from symflow._nt import stax
    from symflow.architectures import ARCHITECTURES, _conv_body, _dense

    kind = ARCHITECTURES.get(arch).layers
    if kind == "dense":
        init_fn, apply_fn, _ = stax.serial(stax.Flatten(), _dense(hp, width))
    else:
        init_fn, apply_fn, _ = _conv_body(hp, width, local=kind == "local")[0]
    return init_fn, apply_fn


def _basis(shape: tuple[int, ...]) -> np.ndarray:
    dim = int(np.prod(shape))
    return np.eye(dim, dtype=np.float64).reshape((dim,) + tuple(shape))


def couple_first_layer(arch: str, hp, width: int, weights, transform: str, seed: int,
                       image_shape: tuple[int, ...]) -> tuple[np.ndarray, float]:
    """(W', relative residual): the first layer's weights with tau absorbed, W'(x) = W(tau x).

    Solved as least squares over the basis images e_i (the layer is linear in W and in x):
    W' = argmin sum_i |W'(e_i) - W(tau e_i)|^2, through the layer's vector-Jacobian product in W.
    For dense and convolution layers A^T A is a multiple of the identity, so one product solves
    it; the residual then says whether the solution is exact. Raises NotCoupled if it is not."""
    import jax
    import jax.numpy as jnp

    from symflow.groups import transform_images

    _, apply_fn = first_layer(arch, hp, width)
    dtype = jnp.asarray(weights).dtype
    W = jnp.asarray(weights, dtype)
    layer_params = lambda w: ((), (w, None)) if _is_dense(arch) else (w, None)  # noqa: E731
    basis = _basis(image_shape)
    x = jnp.asarray(basis, dtype)
    tx = jnp.asarray(transform_images(transform, seed, basis), dtype)

    def g(w, inputs):
        return apply_fn(layer_params(w), inputs)

    target = g(W, tx)
    out, vjp = jax.vjp(lambda w: g(w, x), W)
    (at_b,) = vjp(target)
    (at_a_w,) = vjp(out)  # A^T A W: its ratio to W is the scalar of A^T A
    scale = float(jnp.vdot(at_a_w, W) / jnp.vdot(W, W))
    coupled = at_b / scale
    residual = float(jnp.linalg.norm(g(coupled, x) - target) / jnp.linalg.norm(target))
    if not residual <= COUPLING_TOLERANCE:
        raise NotCoupled(f"{arch}'s first layer cannot absorb tau of {transform}: least-squares residual "
                         f"{residual:.2g} (exact: <= {COUPLING_TOLERANCE:g})")
    return np.asarray(coupled), residual


def _is_dense(arch: str) -> bool:
    from symflow.architectures import ARCHITECTURES

    return ARCHITECTURES.get(arch).layers == "dense"


@dataclass(frozen=True)
class Pair:
    """The result of one coupled pair of training runs."""

    coupling_residual: float
    max_abs_diff: float
    max_rel_diff: float
    lr: float


def coupled_pair(arch: str, hp, width: int, transform: str, seed: int, x_train: np.ndarray, y_train: np.ndarray,
                 x_test: np.ndarray, *, lr: float, l2: float, momentum: float, batch_size: int,
                 steps: int = STEPS) -> Pair:
    """Train the network on tau D from W and on D from W tau for `steps` SGD steps (the same
    batches, the same learning rate and L2); compare their test outputs (on tau x_test and on
    x_test). In float64 (JAX's x64 mode, which the caller enables): the identity is exact, and
    float32 rounding, amplified by a large learning rate over the steps, would blur it (measured
    in float32: VEC_16 at 8 eta0 differed by 1.5% after 50 steps, GAP_16 by 0.08%)."""
    import jax

    from symflow.groups import transform_images
    from symflow.train.model import build_model, first_layer_index, init_key, init_params, order_key
    from symflow.train.steps import create_train_state, train_steps

    if not jax.config.jax_enable_x64:
        raise RuntimeError("coupled_pair runs in float64: enable JAX's x64 mode first "
                           "(symflow.runtime.configure_jax(x64=True)); float32 rounding would blur the identity")
    dtype = np.float64
    model = build_model(arch, hp, width, np.shape(y_train)[-1])  # as many outputs as the data's classes
    shape = tuple(x_train.shape[1:])
    params = init_params(model.init_fn, init_key(seed), shape, dtype=dtype)
    i = first_layer_index(params)
    W, *rest = params[i]
    coupled_W, residual = couple_first_layer(arch, hp, width, W, transform, seed, shape)
    coupled = list(params)
    coupled[i] = (jax.numpy.asarray(coupled_W, W.dtype), *rest)

    x_train, x_test = np.asarray(x_train, dtype), np.asarray(x_test, dtype)
    tx_train, tx_test = transform_images(transform, seed, x_train), transform_images(transform, seed, x_test)
    y = np.asarray(y_train, dtype)
    key = order_key(seed)
    outs = []
    for p, xtr, xte in ((params, tx_train, tx_test), (coupled, x_train, x_test)):
        state = create_train_state(model.apply_fn, p, lr, momentum, l2)
        state, _, _ = train_steps(state, xtr, y, key, steps, batch_size)
        outs.append(np.asarray(model.apply_fn(state.params, xte), np.float64))
    a, b = outs
    diff = float(np.max(np.abs(a - b)))
    scale = float(np.max(np.abs(a)))
    rel = diff / scale if scale > 0 and np.isfinite(scale) else math.inf
    return Pair(residual, diff, rel if np.isfinite(diff) else math.inf, lr)


def claimed_pairs(architectures: Sequence[str], transforms: Sequence[str]) -> list[tuple[str, str]]:
    """(architecture, transform) pairs Thm 4.1 claims invariant at finite width (identity left out)."""
    from symflow.architectures import ARCHITECTURES
    from symflow.groups import GROUPS, parse_spec

    out = []
    for a in architectures:
        for t in transforms:
            group = parse_spec(t).group
            if not GROUPS.get(group).trivial and ARCHITECTURES.get(a).claims(group, infinite=False):
                out.append((a, t))
    return out


def run_coupled_audit(identity_path: str | os.PathLike, eta0_paths: Sequence[str | os.PathLike],
                      out_csv: str | os.PathLike, *, settings: Mapping, log: logging.Logger | None = None) -> list[dict]:
    """Every coupled pair (architecture, transform) x recipe of `settings` (symflow.jobs'
    CoupledAudit settings: dataset, hp, pairs, widths, recipes, seed, m, momentum, batch_size,
    steps) on the untransformed data (identity_path: the dataset's data-stage file; the first m
    training images), with lr = lr_factor x the eta0 of the architecture's network on that data
    (eta0_paths, one per architecture, in sorted order), written to out_csv (COUPLED_COLUMNS).
    A pair whose training diverged has no comparison: its verdict says so."""
    from symflow.architectures import ModelHP
    from symflow.data import load_dataset
    from symflow.h5io import write_csv
    from symflow.train.eta0 import read_eta0

    log = log or _log
    s = settings
    hp = ModelHP.from_tag(s["hp"])
    archs = sorted({a for a, _ in s["pairs"]})
    if len(eta0_paths) != len(archs):
        raise ValueError(f"{len(eta0_paths)} eta0 files for the {len(archs)} architectures {archs}")
    eta0 = dict(zip(archs, (read_eta0(p) for p in eta0_paths)))
    data = load_dataset(identity_path, parts=("train", "test"))
    m = int(s["m"])
    x_train, y_train, x_test = data["x_train"][:m], data["y_train"][:m], data["x_test"]
    rows = []
    for arch, transform in s["pairs"]:
        width = int(s["widths"][arch])
        for recipe, r in s["recipes"].items():
            lr = float(r["lr_factor"]) * eta0[arch]
            try:
                pair = coupled_pair(arch, hp, width, transform, int(s["seed"]), x_train, y_train, x_test, lr=lr,
                                    l2=float(r["l2"]), momentum=float(s["momentum"]),
                                    batch_size=int(s["batch_size"]), steps=int(s["steps"]))
            except NotCoupled as exc:
                log.error("%s", exc)
                pair, verdict = Pair(math.inf, math.nan, math.inf, lr), "not_coupled"
            else:
                if not math.isfinite(pair.max_abs_diff):
                    verdict = "diverged"  # no outputs to compare
                else:
                    verdict = "agrees" if pair.max_rel_diff <= TOLERANCE else "refutes"
            rows.append(dict(dataset=s["dataset"], architecture=arch, width=width, transform=transform,
                             seed=int(s["seed"]), recipe=recipe, m=m, steps=int(s["steps"]), lr=pair.lr,
                             coupling_residual=pair.coupling_residual, max_abs_diff=pair.max_abs_diff,
                             max_rel_diff=pair.max_rel_diff, tolerance=TOLERANCE, verdict=verdict))
            log.info("%s_%d %s on %s (lr %.4g): coupling residual %.2g; after %d steps max |f - f'| %.3g "
                     "(relative %.3g): %s", arch, width, recipe, transform, lr, pair.coupling_residual,
                     int(s["steps"]), pair.max_abs_diff, pair.max_rel_diff, verdict)
    write_csv(out_csv, rows, COUPLED_COLUMNS)
    return rows
