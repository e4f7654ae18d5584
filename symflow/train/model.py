"""The finite network (the architecture registry's stax definition at width n), its
initialisation, and the PRNG keys a run derives from its seed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

FIRST_LAYER_INITS = ("gaussian", "uniform")
# fold_in tags: separate random streams derived from one seed
_INIT_TAG, _ORDER_TAG, _UNIFORM_TAG, _ETA0_TAG = 1, 2, 3, 4


def init_key(seed: int, member: int = 0):
    """The PRNG key of the initialisation of run (seed, member)."""
    import jax

    base = jax.random.PRNGKey(int(seed))
    return jax.random.fold_in(jax.random.fold_in(base, _INIT_TAG), int(member))


def order_key(seed: int):
    """The PRNG key of the mini-batch order (per-epoch permutations) of a run with `seed`."""
    import jax

    return jax.random.fold_in(jax.random.PRNGKey(int(seed)), _ORDER_TAG)


@dataclass(frozen=True)
class Model:
    """A finite network of a registered architecture at width n: stax init_fn and apply_fn."""

    arch: str
    width: int
    init_fn: Callable
    apply_fn: Callable


def build_model(arch: str, hp, width: int, num_classes: int = 10) -> Model:
    """The registry's stax definition at width `width` (hp: symflow.architectures.ModelHP) with
    `num_classes` outputs: the dataset's class count (symflow.data.dataset_classes; CIFAR-10's 10)."""
    from symflow.architectures import ARCHITECTURES

    init_fn, apply_fn, _ = ARCHITECTURES.get(arch).stax(hp, int(width), num_classes)
    return Model(arch, int(width), init_fn, apply_fn)


def first_layer_index(params: Sequence) -> int:
    """Position of the first weight-bearing layer in a stax.serial parameter list."""
    for i, p in enumerate(params):
        if isinstance(p, (tuple, list)) and len(p) > 0:
            return i
    raise ValueError("the network has no weight-bearing layer")


def init_params(
    init_fn: Callable,
    key,
    input_shape: tuple[int, ...],
    first_layer: str = "gaussian",
    dtype=None,
):
    """Parameters from the stax init_fn (NTK parameterisation: every W and b ~ N(0, 1)).

    first_layer="uniform" replaces W of the first weight-bearing layer by
    U(-sqrt(3), sqrt(3)), the same (unit) variance, so the layer's pre-activations have
    the variance of the Gaussian init (Fig. S5); its bias stays Gaussian.
    input_shape is one example's shape, e.g. (8, 8, 3).
    """
    import jax
    import jax.numpy as jnp

    if first_layer not in FIRST_LAYER_INITS:
        raise ValueError(f"first_layer must be one of {FIRST_LAYER_INITS}, got {first_layer!r}")
    _, params = init_fn(key, (1,) + tuple(input_shape))
    params = list(params)
    if first_layer == "uniform":
        i = first_layer_index(params)
        W, *rest = params[i]
        s = math.sqrt(3.0)
        W = jax.random.uniform(jax.random.fold_in(key, _UNIFORM_TAG), W.shape, W.dtype, -s, s)
        params[i] = (W, *rest)
    if dtype is not None:
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    return params
