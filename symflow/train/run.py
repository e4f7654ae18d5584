"""Finite-width networks trained by SGD with momentum (stage 4, "sgd"), as App. B.1 of
Xiao & Pennington (ICML 2022) says.

The model is the architecture registry's stax definition at width n
(``ARCHITECTURES.get(arch).stax(hp, n)``): the *same* init_fn and apply_fn whose
kernel_fn gives the infinite-width kernels, so NTK parameterisation, sigma_w^2,
sigma_b^2 and the Gaussian init are those of the kernel by construction. flax's
``TrainState`` holds the stax parameters, optax the optimiser:

    loss  L = 1/(2 K |B|) sum_{i in B} |f(x_i) - y_i|^2 + l2/2 |theta|^2,  K = 10, |B| = 40
    opt   optax.chain(add_decayed_weights(l2), sgd(lr, momentum=0.9))
          (the decayed weights are exactly the gradient of l2/2 |theta|^2; optax's
          momentum is the heavy ball v <- 0.9 v + g, theta <- theta - lr v, the same
          as jax.example_libraries.optimizers.momentum the paper's code used)
    lr    lr_factor * eta0, eta0 = 2 n / lambda_max(Theta) (neural-tangents'
          max_learning_rate with momentum 0 and y_train_size None), Theta the
          empirical NTK of the finite network at initialisation on n training
          examples, traced (averaged) over the K logits and averaged over a few
          initialisations (Monte Carlo).

Training runs in chunks of ``eval_every`` jitted steps dispatched asynchronously: the
mini-batch indices are computed on device from a per-epoch permutation keyed by
(seed, epoch), the data stay on the device, and nothing is read back until the chunk
ends, so there is no host round trip per step; a run resumed from a checkpoint draws
exactly the batches of an uninterrupted one. (Not one ``lax.fori_loop`` per chunk:
XLA:CPU runs convolutions inside loop bodies about 10x slower, jax#12868.) After each chunk
the train/val/test accuracies and MSEs are evaluated. Two snapshots are tracked with
their outputs: the evaluation of best validation accuracy (reported by default, as
kernels choose their ridge on validation) and the one of best test accuracy (the
paper's protocol, ``selection="test"``; always kept as best_test_accuracy). Training
stops at 100% train accuracy, at the budget (``max_steps`` and ``max_epochs``,
whichever comes first), or at a failure no step undoes: a non-finite or exploding
loss (*diverged*), or outputs constant over the training set (*collapsed*). A run
whose best train accuracy stays below ``success_train_accuracy`` (paper 95%) is
*failed*, with its kind (collapsed, diverged, budget) and reason; its outputs are
still written so the workflow goes on.

Randomness is explicit: the init key is derived from (seed, member), the batch
order from seed alone (members of an ensemble differ only in their init, as in
S16 of the paper); there is no global seed. On CPU every number is deterministic.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

FIRST_LAYER_INITS = ("gaussian", "uniform")
RECIPES = ("nn", "nn_plus")
SELECTIONS = ("val", "test")  # the reported snapshot: best validation accuracy, or best test (App. B.1)
# A run has collapsed when the spread of its outputs over the training examples (std over
# examples, mean over the K logits) falls below this fraction of the spread at
# initialisation: constant outputs (dead ReLUs, or the mean predictor), which no further
# step undoes. It has diverged when its loss is non-finite, or its training MSE exceeds
# this multiple of the MSE at initialisation.
COLLAPSE_SPREAD_RATIO = 1e-3
DIVERGE_MSE_RATIO = 1e3
CURVE_COLUMNS = (
    "step",
    "epoch",
    "train_loss",
    "train_accuracy",
    "train_mse",
    "val_accuracy",
    "val_mse",
    "test_accuracy",
    "test_mse",
    "wall_time_s",
)
# fold_in tags: separate random streams derived from one seed
_INIT_TAG, _ORDER_TAG, _UNIFORM_TAG, _ETA0_TAG = 1, 2, 3, 4

_log = logging.getLogger("symflow.train")


# -- configuration ----------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run besides model, data and seeds."""

    batch_size: int = 40
    momentum: float = 0.9
    lr_factor: float = 1.0
    l2: float = 0.0
    max_steps: int = 3000
    max_epochs: float | None = None
    eval_every: int = 100
    checkpoint_every: int = 500
    success_train_accuracy: float = 0.95
    selection: str = "val"
    eval_batch_size: int = 500

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_steps", "eval_every", "checkpoint_every", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")
        if self.max_epochs is not None and not self.max_epochs > 0:
            raise ValueError(f"TrainConfig.max_epochs must be > 0 (or None), got {self.max_epochs}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"TrainConfig.selection must be one of {SELECTIONS}, got {self.selection!r}")

    def step_budget(self, m: int) -> int:
        """The step cap of a run on m examples (:func:`step_budget`)."""
        return step_budget(m, self.batch_size, self.max_steps, self.max_epochs)

    @classmethod
    def from_sgd_section(cls, sgd: Mapping[str, Any], recipe: str, **overrides: Any) -> "TrainConfig":
        """From the config's `sgd` section (a dict, already validated) and a recipe name."""
        if recipe not in sgd["recipes"]:
            raise ValueError(f"unknown recipe {recipe!r}; have {sorted(sgd['recipes'])}")
        r = sgd["recipes"][recipe]
        values = dict(
            batch_size=int(sgd["batch_size"]),
            momentum=float(sgd["momentum"]),
            lr_factor=float(r["lr_factor"]),
            l2=float(r["l2"]),
            max_steps=int(sgd["max_steps"]),
            max_epochs=None if sgd.get("max_epochs") is None else float(sgd["max_epochs"]),
            eval_every=int(sgd["eval_every"]),
            checkpoint_every=int(sgd["checkpoint_every"]),
            success_train_accuracy=float(sgd["success_train_accuracy"]),
            selection=str(sgd.get("selection", "val")),
        )
        values.update(overrides)
        return cls(**values)


# -- seeds ------------------------------------------------------------------------------


def init_key(seed: int, member: int = 0):
    """The PRNG key of the initialisation of run (seed, member)."""
    import jax

    base = jax.random.PRNGKey(int(seed))
    return jax.random.fold_in(jax.random.fold_in(base, _INIT_TAG), int(member))


def order_key(seed: int):
    """The PRNG key of the mini-batch order (per-epoch permutations) of a run with `seed`."""
    import jax

    return jax.random.fold_in(jax.random.PRNGKey(int(seed)), _ORDER_TAG)


# -- the model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """A finite network of a registered architecture at width n: stax init_fn and apply_fn."""

    arch: str
    width: int
    init_fn: Callable
    apply_fn: Callable


def build_model(arch: str, hp, width: int, num_classes: int = 10) -> Model:
    """The registry's stax definition at width `width` (hp: symflow.architectures.ModelHP)."""
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


# -- loss, state, steps ----------------------------------------------------------------


def mse_loss(outputs, targets):
    """1/(2 K |B|) sum |f - y|^2: half the mean over examples and outputs."""
    import jax.numpy as jnp

    return 0.5 * jnp.mean((outputs - targets) ** 2)


def make_optimizer(lr: float, momentum: float = 0.9, l2: float = 0.0):
    """SGD with heavy-ball momentum; l2 adds l2 * theta to the gradient (= grad of l2/2 |theta|^2).

    Memoised: the same (lr, momentum, l2) give the same (stateless) transformation
    object, so a second run in one process reuses the compiled training step.
    """
    return _optimizer(float(lr), float(momentum), float(l2))


@functools.lru_cache(maxsize=64)
def _optimizer(lr: float, momentum: float, l2: float):
    import optax

    return optax.chain(optax.add_decayed_weights(l2), optax.sgd(lr, momentum=momentum))


def create_train_state(apply_fn: Callable, params, lr: float, momentum: float = 0.9, l2: float = 0.0):
    """A flax TrainState around the stax apply_fn and parameters (step counter int32).

    The parameters are copied: the training steps donate the state's buffers, and the
    caller's arrays must stay valid.
    """
    import jax
    import jax.numpy as jnp
    from flax.training import train_state

    params = jax.tree_util.tree_map(jnp.array, params)
    state = train_state.TrainState.create(apply_fn=apply_fn, params=params, tx=make_optimizer(lr, momentum, l2))
    return state.replace(step=jnp.asarray(0, jnp.int32))


def _sgd_update(state, x, y):
    import jax

    def loss_fn(params):
        return mse_loss(state.apply_fn(params, x), y)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss


def train_step(state, x, y):
    """One SGD step on the batch (x, y): returns (new state, loss before the step). Jitted."""
    return _train_step_jit(state, x, y)


def _lazy_jit(fn, **kw):
    cache: dict = {}

    def wrapper(*args, **kwargs):
        if "f" not in cache:
            import jax

            cache["f"] = jax.jit(fn, **kw)
        return cache["f"](*args, **kwargs)

    wrapper.__wrapped__ = fn
    return wrapper


_train_step_jit = _lazy_jit(_sgd_update)


def batch_plan(m: int, batch_size: int) -> tuple[int, int]:
    """(effective batch size, steps per epoch): batches of min(batch_size, m), remainder dropped."""
    b = min(int(batch_size), int(m))
    return b, int(m) // b


def step_budget(m: int, batch_size: int, max_steps: int, max_epochs: float | None) -> int:
    """The step cap of a run on m examples: min(max_steps, ceil(max_epochs x steps per epoch));
    max_steps alone when max_epochs is None."""
    if max_epochs is None:
        return int(max_steps)
    spe = batch_plan(m, batch_size)[1]
    return max(1, min(int(max_steps), int(math.ceil(float(max_epochs) * spe - 1e-9))))


def _ordered_step(state, perm, loss_sum, first_bad, x_train, y_train, key, batch_size: int, steps_per_epoch: int):
    """One SGD step on the batch of step s: slice s % E of permutation(fold_in(key, s // E)).

    perm carries the current epoch's permutation (recomputed on device at each epoch
    start); loss_sum and first_bad (first step with a non-finite loss, or -1)
    accumulate on device, so a chunk of steps needs no host round trip.
    """
    import jax
    import jax.numpy as jnp
    from jax import lax

    m = x_train.shape[0]
    step = state.step
    pos = step % steps_per_epoch
    perm = lax.cond(
        pos == 0,
        lambda s: jax.random.permutation(jax.random.fold_in(key, s // steps_per_epoch), m),
        lambda s: perm,
        step,
    )
    idx = lax.dynamic_slice_in_dim(perm, pos * batch_size, batch_size)
    state, loss = _sgd_update(state, jnp.take(x_train, idx, axis=0), jnp.take(y_train, idx, axis=0))
    bad = jnp.logical_and(first_bad < 0, jnp.logical_not(jnp.isfinite(loss)))
    return state, perm, loss_sum + loss, jnp.where(bad, step, first_bad)


_ordered_step_jit = _lazy_jit(
    _ordered_step, static_argnames=("batch_size", "steps_per_epoch"), donate_argnums=(0, 1, 2, 3)
)


def _epoch_perm(key, step, m: int, steps_per_epoch: int):
    import jax

    return jax.random.permutation(jax.random.fold_in(key, step // steps_per_epoch), m)


_epoch_perm_jit = _lazy_jit(_epoch_perm, static_argnames=("m", "steps_per_epoch"))


def train_steps(state, x_train, y_train, key, n_steps: int, batch_size: int):
    """Run n_steps SGD steps, dispatched asynchronously: no host sync inside the chunk.

    Returns (state, mean mini-batch loss over these steps, first step with a non-finite
    loss or -1), the last two as device scalars. The batch of a step depends only on
    (key, global step), so splitting a run into chunks anywhere gives the same
    trajectory. (A Python loop of jitted steps rather than one lax.fori_loop: XLA:CPU
    runs convolutions inside loop bodies an order of magnitude slower, jax#12868;
    measured 0.9 vs 11 steps/s for GAP-32 on 8x8 images.)
    """
    import jax.numpy as jnp

    m = int(x_train.shape[0])
    b, spe = batch_plan(m, batch_size)
    perm = _epoch_perm_jit(key, state.step, m=m, steps_per_epoch=spe)
    loss_sum = jnp.zeros((), y_train.dtype)
    first_bad = jnp.asarray(-1, jnp.int32)
    for _ in range(int(n_steps)):
        state, perm, loss_sum, first_bad = _ordered_step_jit(
            state, perm, loss_sum, first_bad, x_train, y_train, key, batch_size=b, steps_per_epoch=spe
        )
    return state, loss_sum / max(int(n_steps), 1), first_bad


# -- evaluation ----------------------------------------------------------------------------


def predict(
    apply_fn: Callable, params, x, batch_size: int = 500, jitted: Callable | None = None, pad: bool = False
) -> np.ndarray:
    """Network outputs on x in chunks of one size (the last one padded), so one compilation.

    The chunk is min(batch_size, len(x)), or exactly batch_size with pad=True (then
    several inputs of different lengths share the compiled function).
    """
    import jax
    import jax.numpy as jnp

    f = jitted or jax.jit(apply_fn)
    n = x.shape[0]
    b = int(batch_size) if pad else min(int(batch_size), n)
    out = []
    for start in range(0, n, b):
        xb = x[start : start + b]
        k = xb.shape[0]
        if k < b:
            xb = jnp.concatenate([xb, jnp.zeros((b - k,) + xb.shape[1:], xb.dtype)])
        out.append(np.asarray(f(params, xb))[:k])
    return np.concatenate(out)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, axis=-1) == labels))


def mse(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Mean over examples and outputs of (f - y)^2 (twice the loss without L2)."""
    return float(np.mean((np.asarray(outputs, np.float64) - targets) ** 2))


def s_dist(a: np.ndarray, b: np.ndarray) -> float:
    """S-Dist (App. E, S15/S16): E_x |a(x) - b(x)|^2, squared norm over outputs, mean over x."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"S-Dist of outputs with shapes {a.shape} and {b.shape}")
    return float(np.mean(np.sum((a - b) ** 2, axis=-1)))


# -- eta0: 2 / lambda_max of the finite-width NTK ------------------------------------------


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


# -- checkpoints ------------------------------------------------------------------------------

_MAGIC = b"SYMFLOW-CHECKPOINT-1\n"


class Checkpoint:
    """A run's resumable state in one file, written atomically, with a SHA-256 of its payload.

    Layout: a magic line, the payload's hex SHA-256 and a newline, then the payload
    (flax msgpack of a dict). `load` returns None, with a logged message, for a
    missing, corrupt or foreign (other fingerprint) file; the run then starts afresh.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: str, log: logging.Logger | None = None):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.log = log or _log

    def save(self, tree: dict) -> None:
        from flax import serialization

        from symflow.faults import armed, fault_point
        from symflow.h5io import atomic_path

        payload = serialization.msgpack_serialize({**tree, "fingerprint": self.fingerprint})
        digest = hashlib.sha256(payload).hexdigest().encode()
        blob = _MAGIC + digest + b"\n" + payload
        with atomic_path(self.path, suffix=".ckpt") as tmp:
            with open(tmp, "wb") as fh:
                if armed():  # fault injection (tests): die with half the checkpoint written
                    fh.write(blob[: len(blob) // 2])
                    fh.flush()
                    fault_point("ckpt.write", str(self.path))
                fh.write(blob[fh.tell() :])

    def load(self) -> dict | None:
        from flax import serialization

        self._remove_stale_temporaries()
        if not self.path.exists():
            return None
        try:
            tree = serialization.msgpack_restore(checkpoint_payload(self.path))
        except Exception as exc:  # any unreadable file: start afresh, never crash
            self.log.warning("checkpoint %s ignored: %s; training starts from step 0", self.path, exc)
            return None
        if tree.get("fingerprint") != self.fingerprint:
            self.log.warning("checkpoint %s ignored: it belongs to other run settings; starting from step 0", self.path)
            return None
        return tree

    def remove(self) -> None:
        if self.path.exists():
            self.path.unlink()
        self._remove_stale_temporaries()
        for parent in self.path.parents:  # prune empty folders up to checkpoints/
            try:
                parent.rmdir()
            except OSError:
                break

    def _remove_stale_temporaries(self) -> None:
        if self.path.parent.is_dir():
            for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp.ckpt"):
                tmp.unlink(missing_ok=True)


def checkpoint_payload(path: str | os.PathLike) -> bytes:
    """A checkpoint file's payload, its SHA-256 verified; ValueError naming the file if it is not
    a complete symflow checkpoint (what `symflow verify-cache` checks under checkpoints/)."""
    blob = Path(path).read_bytes()
    if not blob.startswith(_MAGIC):
        raise ValueError(f"{path}: not a symflow checkpoint")
    head = len(_MAGIC)
    digest, payload = blob[head : head + 64], blob[head + 65 :]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise ValueError(f"{path}: checkpoint checksum mismatch (truncated or corrupt)")
    return payload


def fingerprint(**identity: Any) -> str:
    """A stable digest of what determines a run's trajectory (for checkpoint matching)."""
    text = json.dumps({k: identity[k] for k in sorted(identity)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# -- training ----------------------------------------------------------------------------


@dataclass
class Split:
    """One split of a dataset: inputs, one-hot targets, integer labels."""

    x: Any
    y: Any
    labels: np.ndarray


@dataclass
class RunResult:
    """What a training run reports.

    The reported point (test_accuracy, test_mse, val_accuracy, test_outputs, val_outputs,
    best_step) is the evaluation chosen by cfg.selection: "val" = the highest validation
    accuracy (ties: the lower validation MSE, then the earlier step), as kernels choose
    their ridge; "test" = the highest test accuracy along training (App. B.1). The
    highest test accuracy is always kept in best_test_accuracy / best_test_step.
    """

    eta0: float
    lr: float
    steps: int
    best_step: int  # the step of the reported (selected) evaluation
    test_accuracy: float
    test_mse: float
    val_accuracy: float
    train_accuracy: float  # the best train accuracy reached
    failed: bool
    reason: str
    stop: str  # early (100% train accuracy) | cap (step or epoch budget) | nonfinite | collapsed | exploded
    test_outputs: np.ndarray
    val_outputs: np.ndarray
    curve: np.ndarray  # rows of CURVE_COLUMNS
    wall_time_s: float
    resumed_from: int = 0
    failure: str = ""  # collapsed | diverged | budget, empty for a successful run
    selection: str = "val"
    best_test_accuracy: float = math.nan
    best_test_step: int = 0
    epochs: float = 0.0

    def curve_rows(self) -> list[dict[str, float]]:
        return [dict(zip(CURVE_COLUMNS, row)) for row in self.curve.tolist()]


class _Evaluator:
    def __init__(self, apply_fn: Callable, train: Split, val: Split, test: Split, batch_size: int):
        import jax

        self.f = jax.jit(apply_fn)
        self.apply_fn = apply_fn
        self.splits = {"train": train, "val": val, "test": test}
        self.y = {k: np.asarray(s.y, np.float64) for k, s in self.splits.items()}
        # one chunk size for every split: one compilation of the forward pass
        self.batch_size = max(1, min(int(batch_size), max(s.x.shape[0] for s in self.splits.values())))

    def __call__(self, params) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, s in self.splits.items():
            if s.x.shape[0] == 0:
                out[f"{name}_accuracy"], out[f"{name}_mse"], out[f"{name}_outputs"] = math.nan, math.nan, s.y
                continue
            o = predict(self.apply_fn, params, s.x, self.batch_size, self.f, pad=True)
            out[f"{name}_outputs"] = o
            out[f"{name}_accuracy"] = accuracy(o, s.labels)
            out[f"{name}_mse"] = mse(o, self.y[name])
        out["finite"] = all(np.isfinite(out[f"{n}_outputs"]).all() for n in self.splits)
        out["train_spread"] = output_spread(out["train_outputs"]) if out["finite"] else math.nan
        return out


def output_spread(outputs: np.ndarray) -> float:
    """How much a network's outputs vary over examples: std over examples, mean over logits."""
    o = np.asarray(outputs, np.float64)
    if o.shape[0] < 2:
        return math.inf
    return float(np.mean(np.std(o, axis=0)))


def select_evaluation(rows: Sequence[Mapping[str, float]], selection: str = "val") -> int:
    """Index of the evaluation a run reports, among finite evaluations `rows` (dicts with
    val_accuracy, val_mse, test_accuracy): selection "val" takes the highest validation
    accuracy, ties broken by the lower validation MSE, then the earlier evaluation;
    "test" the highest test accuracy (the earliest on ties). The same rule as the
    incremental tracking in :func:`train_and_evaluate`."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    best = None
    for i, r in enumerate(rows):
        if best is None or _better(r, rows[best], selection):
            best = i
    if best is None:
        raise ValueError("no evaluation to select from")
    return best


def _better(new: Mapping[str, float], old: Mapping[str, float] | None, selection: str) -> bool:
    if old is None:
        return True
    if selection == "test":
        return new["test_accuracy"] > old["test_accuracy"]
    if new["val_accuracy"] != old["val_accuracy"]:
        return new["val_accuracy"] > old["val_accuracy"]
    return new["val_mse"] < old["val_mse"]


_SNAPSHOT_KEYS = ("step", "test_accuracy", "test_mse", "val_accuracy", "val_mse")


def train_and_evaluate(
    apply_fn: Callable,
    params,
    train: Split,
    val: Split,
    test: Split,
    cfg: TrainConfig,
    *,
    lr: float,
    key,
    eta0: float = math.nan,
    checkpoint: Checkpoint | None = None,
    log: logging.Logger | None = None,
    on_eval: Callable[[int], None] | None = None,
) -> RunResult:
    """Train from `params` with SGD + momentum, evaluating every cfg.eval_every steps.

    Stops at 100% train accuracy, at the budget (cfg.step_budget(m): max_steps and
    max_epochs), or at a failure that no further step undoes: a non-finite loss or a
    training MSE above DIVERGE_MSE_RATIO x its initial value (diverged), outputs
    constant over the training set (collapsed, COLLAPSE_SPREAD_RATIO). A run that ends
    below cfg.success_train_accuracy fails as collapsed, diverged or budget.

    key: the batch-order key (:func:`order_key`). checkpoint: resume from it if it
    holds a matching state, save to it every cfg.checkpoint_every steps (at the
    evaluation at or after each multiple). on_eval(step) is called after each
    evaluation (and checkpoint), e.g. to interrupt a test run.
    """
    import jax
    import jax.numpy as jnp
    from flax import serialization

    from symflow.faults import fault_point

    log = log or _log
    start = time.perf_counter()
    x_tr, y_tr = jnp.asarray(train.x), jnp.asarray(train.y)
    splits = [Split(x_tr, y_tr, np.asarray(train.labels))]
    splits += [Split(jnp.asarray(s.x), jnp.asarray(s.y), np.asarray(s.labels)) for s in (val, test)]
    evaluate = _Evaluator(apply_fn, *splits, batch_size=cfg.eval_batch_size)
    batch, steps_per_epoch = batch_plan(x_tr.shape[0], cfg.batch_size)
    budget = cfg.step_budget(x_tr.shape[0])
    state = create_train_state(apply_fn, params, lr, cfg.momentum, cfg.l2)

    # snapshots: the evaluation of best validation accuracy and the one of best test accuracy
    snap: dict[str, dict | None] = {"val": None, "test": None}
    outs: dict[str, dict] = {"val": {"test": None, "val": None}, "test": {"test": None, "val": None}}
    train_best = 0.0
    reference = {"spread": math.nan, "mse": math.nan}  # at initialisation
    curve: list[list[float]] = []
    wall_before = 0.0
    resumed_from = 0
    stop, reason, failure = "cap", "", ""

    restored = checkpoint.load() if checkpoint is not None else None
    if restored is not None and int(restored["step"]) > budget:
        log.warning("checkpoint at step %s is past the budget of %d steps; starting from step 0", restored["step"], budget)
        restored = None
    if restored is not None and "snapshots" not in restored:
        log.warning("checkpoint %s is of an older format; starting from step 0", checkpoint.path)
        restored = None
    if restored is not None:
        state = serialization.from_state_dict(state, restored["state"])
        state = state.replace(step=jnp.asarray(state.step, jnp.int32))
        state = jax.tree_util.tree_map(jnp.asarray, state)
        for which in ("val", "test"):
            stored = restored["snapshots"][which]
            snap[which] = {k: (int(stored[k]) if k == "step" else float(stored[k])) for k in _SNAPSHOT_KEYS}
            outs[which] = {
                "test": np.asarray(restored["outputs"][which]["test"]),
                "val": np.asarray(restored["outputs"][which]["val"]),
            }
        train_best = float(restored["train_best"])
        reference = {k: float(v) for k, v in restored["reference"].items()}
        curve = [list(map(float, r)) for r in np.asarray(restored["curve"]).tolist()]
        wall_before = float(restored["wall_time_s"])
        resumed_from = int(restored["step"])
        log.info("resumed from checkpoint %s at step %d", checkpoint.path, resumed_from)

    def record(step: int, train_loss: float, ev: dict) -> None:
        nonlocal train_best
        curve.append(
            [step, step / steps_per_epoch, train_loss]
            + [ev[f"{s}_{q}"] for s in ("train", "val", "test") for q in ("accuracy", "mse")]
            + [wall_before + time.perf_counter() - start]
        )
        if not ev["finite"]:
            return
        train_best = max(train_best, ev["train_accuracy"])
        now = {k: (step if k == "step" else ev[k]) for k in _SNAPSHOT_KEYS}
        for which in ("val", "test"):
            if _better(now, snap[which], which):
                snap[which] = now
                outs[which] = {"test": ev["test_outputs"], "val": ev["val_outputs"]}

    def save(step: int) -> None:
        checkpoint.save(
            {
                "step": step,
                "state": serialization.to_state_dict(jax.device_get(state)),
                "snapshots": snap,
                "outputs": outs,
                "train_best": train_best,
                "reference": reference,
                "curve": np.asarray(curve, np.float64),
                "wall_time_s": wall_before + time.perf_counter() - start,
            }
        )
        log.info("checkpoint at step %d -> %s", step, checkpoint.path)

    step = int(state.step)
    if restored is None:
        ev = evaluate(state.params)
        record(0, math.nan, ev)
        reference = {"spread": ev["train_spread"], "mse": ev["train_mse"]}
        if not ev["finite"]:
            stop, reason, failure = "nonfinite", "non-finite outputs at initialisation", "diverged"
    last_saved = step
    if curve and curve[-1][3] >= 1.0 and not reason:
        stop = "early"
    while not reason and stop != "early" and step < budget:
        n = min(cfg.eval_every, budget - step)
        state, mean_loss, first_bad = train_steps(state, x_tr, y_tr, key, n, cfg.batch_size)
        first_bad = int(first_bad)  # the one host sync of the chunk
        step = int(state.step)
        if first_bad >= 0:
            stop, reason, failure = "nonfinite", f"non-finite loss at step {first_bad} (diverged)", "diverged"
            curve.append(
                [step, step / steps_per_epoch, math.nan] + [math.nan] * 6 + [wall_before + time.perf_counter() - start]
            )
            log.warning("%s", reason)
            break
        ev = evaluate(state.params)
        record(step, float(mean_loss), ev)
        if not ev["finite"]:
            stop, reason, failure = "nonfinite", f"non-finite outputs at step {step} (diverged)", "diverged"
            log.warning("%s", reason)
            break
        if ev["train_mse"] > DIVERGE_MSE_RATIO * reference["mse"]:
            stop, failure = "exploded", "diverged"
            reason = (
                f"training MSE {ev['train_mse']:.3g} at step {step} is over {DIVERGE_MSE_RATIO:g}x its initial "
                f"{reference['mse']:.3g} (diverged)"
            )
            log.warning("%s", reason)
            break
        if ev["train_spread"] <= COLLAPSE_SPREAD_RATIO * reference["spread"]:
            stop = "collapsed"
            collapse = (
                f"outputs constant over the training set at step {step} (spread {ev['train_spread']:.2g}, "
                f"{reference['spread']:.2g} at init; train accuracy {ev['train_accuracy']:.4f}): collapsed"
            )
            log.warning("%s", collapse)
            if train_best < cfg.success_train_accuracy:
                reason, failure = collapse, "collapsed"
            break
        log.info(
            "step %d (epoch %.1f): loss %.4g, train %.4f, val %.4f, test %.4f (selected on %s: test %.4f at %d)",
            step,
            step / steps_per_epoch,
            float(mean_loss),
            ev["train_accuracy"],
            ev["val_accuracy"],
            ev["test_accuracy"],
            cfg.selection,
            snap[cfg.selection]["test_accuracy"],
            snap[cfg.selection]["step"],
        )
        if ev["train_accuracy"] >= 1.0:
            stop = "early"
            break
        if checkpoint is not None and step // cfg.checkpoint_every > last_saved // cfg.checkpoint_every and step < budget:
            save(step)
            last_saved = step
        if on_eval is not None:
            on_eval(step)
        fault_point("train.eval", str(checkpoint.path) if checkpoint is not None else "")

    if not reason and train_best < cfg.success_train_accuracy:
        failure = "budget"
        limit = f"{budget} steps = {budget / steps_per_epoch:g} epochs"
        reason = (
            f"best train accuracy {train_best:.4f} < {cfg.success_train_accuracy:g} "
            f"after {step} steps ({'the budget of ' + limit if stop == 'cap' else stop})"
        )
    failed = bool(reason)
    chosen = snap[cfg.selection]
    out = outs[cfg.selection]
    if chosen is None:  # nothing finite was ever evaluated
        chosen = dict(step=0, test_accuracy=math.nan, test_mse=math.nan, val_accuracy=math.nan, val_mse=math.nan)
        out = {"test": np.full(test.y.shape, np.nan), "val": np.full(val.y.shape, np.nan)}
    best_test = snap["test"] or dict(step=0, test_accuracy=math.nan)
    return RunResult(
        eta0=float(eta0),
        lr=float(lr),
        steps=step,
        best_step=int(chosen["step"]),
        test_accuracy=float(chosen["test_accuracy"]),
        test_mse=float(chosen["test_mse"]),
        val_accuracy=float(chosen["val_accuracy"]),
        train_accuracy=float(train_best),
        failed=failed,
        reason=reason,
        stop=stop,
        test_outputs=np.asarray(out["test"]),
        val_outputs=np.asarray(out["val"]),
        curve=np.asarray(curve, np.float64).reshape(-1, len(CURVE_COLUMNS)),
        wall_time_s=wall_before + time.perf_counter() - start,
        resumed_from=resumed_from,
        failure=failure,
        selection=cfg.selection,
        best_test_accuracy=float(best_test["test_accuracy"]),
        best_test_step=int(best_test["step"]),
        epochs=step / steps_per_epoch,
    )


# -- the workflow's entry points ------------------------------------------------------------


def load_splits(data_path: str | os.PathLike, m: int) -> tuple[Split, Split, Split, dict]:
    """The first m training examples, the validation and test splits of a data-stage file."""
    from symflow.data import load_dataset

    d = load_dataset(data_path)
    n = d["x_train"].shape[0]
    if not 1 <= m <= n:
        raise ValueError(f"{data_path}: m = {m} training examples requested, the file has {n}")
    train = Split(d["x_train"][:m], d["y_train"][:m], d["labels_train"][:m])
    val = Split(d["x_val"], d["y_val"], d["labels_val"])
    test = Split(d["x_test"], d["y_test"], d["labels_test"])
    return train, val, test, d["attrs"]


def run_estimate_eta0(
    data_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    arch: str,
    hp,
    width: int,
    init: str,
    m: int,
    seed: int,
    member: int,
    size: int,
    mode: str = "own",
    samples: int = 2,
    implementation: int = 1,
    log: logging.Logger | None = None,
) -> Eta0:
    """Estimate eta0 on the first min(size, m) training examples; write it as JSON (atomically).

    mode (:func:`eta0_keys`): "own" = the run's own initialisation (both recipes of a
    (seed, member) share it); "mc" = the mean NTK of `samples` inits keyed by the seed.
    """
    from symflow.h5io import atomic_path

    log = log or _log
    train, _, _, attrs = load_splits(data_path, m)
    n = min(int(size), int(m))
    model = build_model(arch, hp, width)
    est = estimate_eta0(
        model.init_fn,
        model.apply_fn,
        np.asarray(train.x[:n]),
        eta0_keys(mode, seed, member, samples),
        init,
        implementation,
    )
    log.info(
        "eta0 = %.6g (%s: lambda_max %.6g of the %s NTK on %d examples; per init %s) in %.1f s",
        est.eta0,
        mode,
        est.lambda_max,
        "own" if mode == "own" else "mean",
        n,
        ", ".join(f"{v:.6g}" for v in est.lambda_max_samples),
        est.seconds,
    )
    record = {
        **est.to_dict(),
        "arch": arch,
        "width": int(width),
        "init": init,
        "hp": hp.tag,
        "m": int(m),
        "seed": int(seed),
        "member": int(member),
        "mode": mode,
        "implementation": int(implementation),
        "data_checksum": attrs.get("content_sha256", ""),
        "definition": (
            "eta0 = 2 n / lambda_max(logit-traced empirical NTK on the first n training examples, "
            + ("at the run's own initialisation)" if mode == "own" else "mean over `samples` inits keyed by the seed)")
        ),
    }
    with atomic_path(out_path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return est


def read_eta0(path: str | os.PathLike) -> float:
    value = float(json.loads(Path(path).read_text())["eta0"])
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{path}: eta0 = {value} is not a positive number")
    return value


def write_curve(path: str | os.PathLike, result: RunResult) -> None:
    import csv

    from symflow.h5io import atomic_path

    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(CURVE_COLUMNS)
            for row in result.curve.tolist():
                w.writerow(
                    [
                        "" if (isinstance(v, float) and math.isnan(v)) else (int(v) if i == 0 else repr(v))
                        for i, v in enumerate(row)
                    ]
                )


def run_sgd(
    data_path: str | os.PathLike,
    eta0_path: str | os.PathLike,
    *,
    metrics_path: str | os.PathLike,
    predictions_path: str | os.PathLike,
    curve_path: str | os.PathLike,
    checkpoint_path: str | os.PathLike | None,
    dataset: str,
    transform: str,
    arch: str,
    hp,
    width: int,
    init: str,
    recipe: str,
    m: int,
    seed: int,
    member: int,
    cfg: TrainConfig,
    keep_checkpoint: bool = False,
    log: logging.Logger | None = None,
    on_eval: Callable[[int], None] | None = None,
) -> RunResult:
    """One run of the sgd stage: train, then write predictions.h5, curve.csv and metrics.csv.

    A failed run (diverged, or below the success threshold) writes the same files with
    failed=True and its reason; only a broken input raises.
    """
    from symflow.groups import parse_spec
    from symflow.h5io import package_versions, write_h5
    from symflow.results import write_row

    log = log or _log
    train, val, test, attrs = load_splits(data_path, m)
    eta0 = read_eta0(eta0_path)
    lr = cfg.lr_factor * eta0
    model = build_model(arch, hp, width)
    dtype = np.asarray(train.x).dtype
    params = init_params(model.init_fn, init_key(seed, member), tuple(train.x.shape[1:]), init, dtype=dtype)
    ckpt = None
    if checkpoint_path is not None:
        ckpt = Checkpoint(
            checkpoint_path,
            fingerprint(
                arch=arch,
                hp=hp.tag,
                width=int(width),
                init=init,
                m=int(m),
                seed=int(seed),
                member=int(member),
                lr=lr,
                l2=cfg.l2,
                momentum=cfg.momentum,
                batch_size=cfg.batch_size,
                eval_every=cfg.eval_every,
                data=attrs.get("content_sha256", ""),
                dtype=str(dtype),
                checkpoint_format=2,
            ),
            log,
        )
    log.info(
        "%s-w%d (%s init) on %s, %s, m=%d, seed %d, member %d: eta0 %.6g, lr %.6g (x%g), l2 %g, batch %d, "
        "momentum %g, budget %d steps (max_steps %d, max_epochs %s), selection on %s",
        arch,
        width,
        init,
        transform,
        recipe,
        m,
        seed,
        member,
        eta0,
        lr,
        cfg.lr_factor,
        cfg.l2,
        batch_plan(m, cfg.batch_size)[0],
        cfg.momentum,
        cfg.step_budget(m),
        cfg.max_steps,
        cfg.max_epochs,
        cfg.selection,
    )
    result = train_and_evaluate(
        model.apply_fn,
        params,
        train,
        val,
        test,
        cfg,
        lr=lr,
        key=order_key(seed),
        eta0=eta0,
        checkpoint=ckpt,
        log=log,
        on_eval=on_eval,
    )
    log.info(
        "done: %s after %d steps (%.1f epochs); test accuracy %.4f at step %d (selected on %s), best test "
        "accuracy %.4f at step %d, best train accuracy %.4f%s",
        result.stop,
        result.steps,
        result.epochs,
        result.test_accuracy,
        result.best_step,
        result.selection,
        result.best_test_accuracy,
        result.best_test_step,
        result.train_accuracy,
        f"; FAILED ({result.failure}): {result.reason}" if result.failed else "",
    )
    spec = parse_spec(transform)
    write_h5(
        predictions_path,
        {
            "test_outputs": result.test_outputs.astype(np.float32),
            "val_outputs": result.val_outputs.astype(np.float32),
            "labels_test": np.asarray(test.labels, np.int64),
            "labels_val": np.asarray(val.labels, np.int64),
        },
        {
            "kind": "sgd_predictions",
            "dataset": dataset,
            "transform": spec.id,
            "architecture": arch,
            "hp": hp.tag,
            "width": int(width),
            "init": init,
            "recipe": recipe,
            "m": int(m),
            "seed": int(seed),
            "member": int(member),
            "eta0": result.eta0,
            "lr": result.lr,
            "l2": cfg.l2,
            "momentum": cfg.momentum,
            "batch_size": batch_plan(m, cfg.batch_size)[0],
            "max_steps": cfg.max_steps,
            "max_epochs": -1.0 if cfg.max_epochs is None else float(cfg.max_epochs),
            "step_budget": cfg.step_budget(m),
            "eval_every": cfg.eval_every,
            "steps": result.steps,
            "epochs": result.epochs,
            "best_step": result.best_step,
            "best_test_step": result.best_test_step,
            "stop": result.stop,
            "failed": int(result.failed),
            "failure": result.failure,
            "reason": result.reason,
            "selection": result.selection,
            "test_accuracy": result.test_accuracy,
            "best_test_accuracy": result.best_test_accuracy,
            "train_accuracy": result.train_accuracy,
            "data_checksum": attrs.get("content_sha256", ""),
            "outputs_at": (
                "the evaluation with the best validation accuracy (ties: lower validation MSE)"
                if result.selection == "val"
                else "the evaluation with the best test accuracy (App. B.1)"
            ),
            "versions": package_versions(),
        },
    )
    write_curve(curve_path, result)
    write_row(
        metrics_path,
        dict(
            stage="sgd",
            dataset=dataset,
            transform=spec.id,
            group=spec.group,
            t=spec.t,
            architecture=arch,
            width=int(width),
            init=init,
            inference=recipe,
            m=int(m),
            seed=int(seed),
            member=int(member),
            ensemble=1,
            accuracy=result.test_accuracy,
            mse=result.test_mse,
            val_accuracy=result.val_accuracy,
            best_test_accuracy=result.best_test_accuracy,
            selection=result.selection,
            train_accuracy=result.train_accuracy,
            failed=result.failed,
            failure=result.failure,
            reason=result.reason,
            steps=result.steps,
            epochs=round(result.epochs, 3),
            eta0=result.eta0,
            lr=result.lr,
            wall_time_s=round(result.wall_time_s, 3),
            path=str(predictions_path),
        ),
    )
    if ckpt is not None and not keep_checkpoint:
        ckpt.remove()
    return result
