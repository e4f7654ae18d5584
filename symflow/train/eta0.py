"""eta0 = 2 n / lambda_max of the finite network's empirical NTK at initialisation (the
learning-rate scale of App. B.1), the empirical NTK itself, and reading eta0 back."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from symflow.train.model import _ETA0_TAG, init_key, init_params


def max_learning_rate(
    ntk_train_train, y_train_size: int | None = None, momentum: float = 0.0, eps: float = 1e-12
) -> float:
    """neural-tangents' predict.max_learning_rate, with the scipy call that current scipy accepts.

    2 (1 + momentum) * factor / lambda_max, factor = y_train_size or the kernel's side.
    """
    import scipy.linalg

    k = np.asarray(ntk_train_train, np.float64)
    k = k.reshape(int(math.isqrt(k.size)), -1) if k.ndim != 2 else k
    n = k.shape[0]
    factor = n if y_train_size is None else int(y_train_size)
    lam = float(scipy.linalg.eigvalsh(k, subset_by_index=[n - 1, n - 1])[-1])
    return 2.0 * (1.0 + momentum) * factor / (lam + eps)


def empirical_ntk_fn(apply_fn: Callable, implementation: int = 1) -> Callable:
    """Jitted (x1, params, x2=None) -> the finite network's NTK, traced (averaged) over the K logits.

    neural-tangents' empirical_ntk_fn; implementations 1 (Jacobian contraction, the
    default) and 2 (NTK-vector products) work on current JAX, 3 does not.
    """
    import jax

    from symflow._nt import nt

    fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=implementation)
    return jax.jit(lambda x1, params, x2=None: fn(x1, x2, params))


def empirical_ntk(apply_fn: Callable, params, x, implementation: int = 1, block: int | None = None) -> np.ndarray:
    """The finite network's logit-traced NTK on x: an (n, n) float64 array."""
    return _blocked_ntk(empirical_ntk_fn(apply_fn, implementation), params, x, block)


def ntk_block_size(params, n: int, num_outputs: int = 10, memory_gb: float = 4.0) -> int:
    """Examples per side of one empirical-NTK block so that the Jacobians (two blocks of
    examples x outputs x the largest layer, float32, x3 for temporaries) fit in memory_gb."""
    import jax

    largest = max(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(params))
    per_example = 3 * 2 * 4 * num_outputs * largest
    return int(max(1, min(n, memory_gb * 1e9 // per_example)))


def _blocked_ntk(ntk_fn: Callable, params, x, block: int | None) -> np.ndarray:
    import jax.numpy as jnp

    n = int(x.shape[0])
    b = n if block is None else max(1, min(int(block), n))
    if b >= n:
        return np.asarray(ntk_fn(jnp.asarray(x), params), np.float64)
    out = np.empty((n, n))
    for i in range(0, n, b):
        for j in range(i, n, b):
            k = np.asarray(ntk_fn(jnp.asarray(x[i : i + b]), params, jnp.asarray(x[j : j + b])), np.float64)
            out[i : i + b, j : j + b] = k
            out[j : j + b, i : i + b] = k.T
    return out


@dataclass(frozen=True)
class Eta0:
    eta0: float
    lambda_max: float
    lambda_max_samples: tuple[float, ...]
    n: int
    samples: int
    seconds: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


LR_ESTIMATES = ("own", "mc")


def eta0_keys(mode: str, seed: int, member: int = 0, samples: int = 2) -> list:
    """The initialisations whose NTK gives eta0.

    own: the run's own init (init_key(seed, member)): the NTK of the network that is
         trained, at its initialisation.
    mc:  `samples` inits keyed by the seed alone, their NTKs averaged (a Monte Carlo
         estimate of the expected finite-width NTK, as nt.monte_carlo_kernel_fn), so
         every member of a seed shares eta0.
    """
    import jax

    if mode == "own":
        return [init_key(seed, member)]
    if mode == "mc":
        base = jax.random.fold_in(jax.random.PRNGKey(int(seed)), _ETA0_TAG)
        return [jax.random.fold_in(base, i) for i in range(int(samples))]
    raise ValueError(f"lr estimate must be one of {LR_ESTIMATES}, got {mode!r}")


def estimate_eta0(
    init_fn: Callable,
    apply_fn: Callable,
    x,
    keys: Sequence,
    first_layer: str = "gaussian",
    implementation: int = 1,
    memory_gb: float = 4.0,
) -> Eta0:
    """eta0 = 2 n / lambda_max of the (mean) empirical NTK on x (n examples).

    The logit-traced empirical NTK is computed at the initialisation drawn from each
    key and averaged; lambda_max of the mean kernel gives eta0 through
    :func:`max_learning_rate` (momentum 0, factor n), as neural-tangents'
    max_learning_rate on a logit-traced NTK. The kernel is computed in square blocks of
    examples when its Jacobians would not fit in memory_gb (:func:`ntk_block_size`).
    """
    start = time.perf_counter()
    x = np.asarray(x)
    ntk_fn = empirical_ntk_fn(apply_fn, implementation)
    total = None
    lams = []
    for key in keys:
        params = init_params(init_fn, key, tuple(x.shape[1:]), first_layer, dtype=x.dtype)
        ntk = _blocked_ntk(ntk_fn, params, x, ntk_block_size(params, x.shape[0], memory_gb=memory_gb))
        lams.append(float(np.linalg.eigvalsh(ntk)[-1]))
        total = ntk if total is None else total + ntk
    mean = total / len(lams)
    eta0 = max_learning_rate(mean)
    lam = 2.0 * mean.shape[0] / eta0
    return Eta0(float(eta0), float(lam), tuple(lams), int(mean.shape[0]), len(lams), time.perf_counter() - start)


def read_eta0(path: str | os.PathLike) -> float:
    value = float(json.loads(Path(path).read_text())["eta0"])
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{path}: eta0 = {value} is not a positive number")
    return value
