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
XLA:CPU runs convolutions inside loop bodies about 10x slower, jax#12868.) After each chunk the
train/val/test accuracies and MSEs are evaluated; the best test accuracy along
training is tracked together with its outputs (the paper reports it); training
stops at 100% train accuracy, at the step cap, or at the first non-finite loss.
A run whose best train accuracy stays below ``success_train_accuracy`` (paper 95%),
or that met a non-finite value, is *failed*, with its reason; its outputs are
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
    eval_every: int = 100
    checkpoint_every: int = 500
    success_train_accuracy: float = 0.95
    eval_batch_size: int = 500

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_steps", "eval_every", "checkpoint_every", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")

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
            eval_every=int(sgd["eval_every"]),
            checkpoint_every=int(sgd["checkpoint_every"]),
            success_train_accuracy=float(sgd["success_train_accuracy"]),
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
    """What a training run reports (outputs are those at the best test accuracy)."""

    eta0: float
    lr: float
    steps: int
    best_step: int
    test_accuracy: float
    test_mse: float
    val_accuracy: float
    train_accuracy: float  # the best train accuracy reached
    failed: bool
    reason: str
    stop: str  # early (100% train accuracy) | cap | nonfinite
    test_outputs: np.ndarray
    val_outputs: np.ndarray
    curve: np.ndarray  # rows of CURVE_COLUMNS
    wall_time_s: float
    resumed_from: int = 0

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
        return out


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
    state = create_train_state(apply_fn, params, lr, cfg.momentum, cfg.l2)

    best = dict(step=0, test_accuracy=-1.0, test_mse=math.nan, val_accuracy=math.nan, train_accuracy=0.0)
    best_out = {"test": None, "val": None}
    curve: list[list[float]] = []
    wall_before = 0.0
    resumed_from = 0
    stop, reason = "cap", ""

    restored = checkpoint.load() if checkpoint is not None else None
    if restored is not None and int(restored["step"]) > cfg.max_steps:
        log.warning("checkpoint at step %s is past max_steps=%d; starting from step 0", restored["step"], cfg.max_steps)
        restored = None
    if restored is not None:
        state = serialization.from_state_dict(state, restored["state"])
        state = state.replace(step=jnp.asarray(state.step, jnp.int32))
        state = jax.tree_util.tree_map(jnp.asarray, state)
        best = {k: (int(v) if k == "step" else float(v)) for k, v in restored["best"].items()}
        best_out = {"test": np.asarray(restored["best_test_outputs"]), "val": np.asarray(restored["best_val_outputs"])}
        curve = [list(map(float, r)) for r in np.asarray(restored["curve"]).tolist()]
        wall_before = float(restored["wall_time_s"])
        resumed_from = int(restored["step"])
        log.info("resumed from checkpoint %s at step %d", checkpoint.path, resumed_from)

    def record(step: int, train_loss: float, ev: dict) -> None:
        curve.append(
            [step, step / steps_per_epoch, train_loss]
            + [ev[f"{s}_{q}"] for s in ("train", "val", "test") for q in ("accuracy", "mse")]
            + [wall_before + time.perf_counter() - start]
        )
        if ev["finite"]:
            best["train_accuracy"] = max(best["train_accuracy"], ev["train_accuracy"])
            if ev["test_accuracy"] > best["test_accuracy"]:
                best.update(
                    step=step,
                    test_accuracy=ev["test_accuracy"],
                    test_mse=ev["test_mse"],
                    val_accuracy=ev["val_accuracy"],
                )
                best_out["test"], best_out["val"] = ev["test_outputs"], ev["val_outputs"]

    def save(step: int) -> None:
        checkpoint.save(
            {
                "step": step,
                "state": serialization.to_state_dict(jax.device_get(state)),
                "best": best,
                "best_test_outputs": best_out["test"],
                "best_val_outputs": best_out["val"],
                "curve": np.asarray(curve, np.float64),
                "wall_time_s": wall_before + time.perf_counter() - start,
            }
        )
        log.info("checkpoint at step %d -> %s", step, checkpoint.path)

    step = int(state.step)
    if restored is None:
        ev = evaluate(state.params)
        record(0, math.nan, ev)
        if not ev["finite"]:
            stop, reason = "nonfinite", "non-finite outputs at initialisation"
    last_saved = step
    if curve and curve[-1][3] >= 1.0 and not reason:
        stop = "early"
    while not reason and stop != "early" and step < cfg.max_steps:
        n = min(cfg.eval_every, cfg.max_steps - step)
        state, mean_loss, first_bad = train_steps(state, x_tr, y_tr, key, n, cfg.batch_size)
        first_bad = int(first_bad)  # the one host sync of the chunk
        step = int(state.step)
        if first_bad >= 0:
            stop, reason = "nonfinite", f"non-finite loss at step {first_bad} (diverged)"
            curve.append(
                [step, step / steps_per_epoch, math.nan] + [math.nan] * 6 + [wall_before + time.perf_counter() - start]
            )
            log.warning("%s", reason)
            break
        ev = evaluate(state.params)
        record(step, float(mean_loss), ev)
        if not ev["finite"]:
            stop, reason = "nonfinite", f"non-finite outputs at step {step} (diverged)"
            log.warning("%s", reason)
            break
        log.info(
            "step %d: loss %.4g, train %.4f, val %.4f, test %.4f (best %.4f at %d)",
            step,
            float(mean_loss),
            ev["train_accuracy"],
            ev["val_accuracy"],
            ev["test_accuracy"],
            best["test_accuracy"],
            best["step"],
        )
        if ev["train_accuracy"] >= 1.0:
            stop = "early"
            break
        if (
            checkpoint is not None
            and step // cfg.checkpoint_every > last_saved // cfg.checkpoint_every
            and step < cfg.max_steps
        ):
            save(step)
            last_saved = step
        if on_eval is not None:
            on_eval(step)
        fault_point("train.eval", str(checkpoint.path) if checkpoint is not None else "")

    if not reason and best["train_accuracy"] < cfg.success_train_accuracy:
        reason = (
            f"best train accuracy {best['train_accuracy']:.4f} < {cfg.success_train_accuracy:g} "
            f"after {step} steps ({'step cap' if stop == 'cap' else stop})"
        )
    failed = bool(reason)
    if best_out["test"] is None:  # nothing finite was ever evaluated
        best_out = {"test": np.full(test.y.shape, np.nan), "val": np.full(val.y.shape, np.nan)}
    return RunResult(
        eta0=float(eta0),
        lr=float(lr),
        steps=step,
        best_step=int(best["step"]),
        test_accuracy=float(best["test_accuracy"]) if best["test_accuracy"] >= 0 else math.nan,
        test_mse=float(best["test_mse"]),
        val_accuracy=float(best["val_accuracy"]),
        train_accuracy=float(best["train_accuracy"]),
        failed=failed,
        reason=reason,
        stop=stop,
        test_outputs=np.asarray(best_out["test"]),
        val_outputs=np.asarray(best_out["val"]),
        curve=np.asarray(curve, np.float64).reshape(-1, len(CURVE_COLUMNS)),
        wall_time_s=wall_before + time.perf_counter() - start,
        resumed_from=resumed_from,
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
            ),
            log,
        )
    log.info(
        "%s-w%d (%s init) on %s, %s, m=%d, seed %d, member %d: eta0 %.6g, lr %.6g (x%g), l2 %g, batch %d, "
        "momentum %g, max_steps %d",
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
        cfg.max_steps,
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
        "done: %s after %d steps; best test accuracy %.4f at step %d, best train accuracy %.4f%s",
        result.stop,
        result.steps,
        result.test_accuracy,
        result.best_step,
        result.train_accuracy,
        f"; FAILED: {result.reason}" if result.failed else "",
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
            "eval_every": cfg.eval_every,
            "steps": result.steps,
            "best_step": result.best_step,
            "stop": result.stop,
            "failed": int(result.failed),
            "reason": result.reason,
            "test_accuracy": result.test_accuracy,
            "train_accuracy": result.train_accuracy,
            "data_checksum": attrs.get("content_sha256", ""),
            "outputs_at": "the evaluation with the best test accuracy (App. B.1)",
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
            train_accuracy=result.train_accuracy,
            failed=result.failed,
            reason=result.reason,
            steps=result.steps,
            eta0=result.eta0,
            lr=result.lr,
            wall_time_s=round(result.wall_time_s, 3),
            path=str(predictions_path),
        ),
    )
    if ckpt is not None and not keep_checkpoint:
        ckpt.remove()
    return result
