"""The SGD steps: loss, optimiser, train state, the batch order and step budget, and chunks
of jitted steps over per-epoch permutations computed on device.

One implementation of a step, used by a lone run (:func:`train_steps`) and by a packed job
(:mod:`symflow.train.packed`, a ``jax.vmap`` over its runs): :func:`optimizer` (the
optimiser chain), :func:`epoch_perm` and :func:`epoch_batch` (the batch order),
:func:`sgd_step` (one update) and :func:`ordered_step` (the update on the batch of a step,
with the chunk's loss sum and first non-finite step)."""

from __future__ import annotations

import functools
import math
from typing import Callable


def mse_loss(outputs, targets):
    """1/(2 K |B|) sum |f - y|^2: half the mean over examples and outputs."""
    import jax.numpy as jnp

    return 0.5 * jnp.mean((outputs - targets) ** 2)


def optimizer(lr, momentum, l2):
    """SGD with heavy-ball momentum; l2 adds l2 * theta to the gradient (= grad of l2/2 |theta|^2).

    lr, momentum and l2 are floats (a lone run's: constants of its compiled step) or traced
    scalars (a packed job's, one per run under vmap).
    """
    import optax

    return optax.chain(optax.add_decayed_weights(l2), optax.sgd(lr, momentum=momentum))


def make_optimizer(lr: float, momentum: float = 0.9, l2: float = 0.0):
    """:func:`optimizer` of floats, memoised: the same (lr, momentum, l2) give the same
    (stateless) transformation object, so a second run in one process reuses the compiled
    training step."""
    return _optimizer(float(lr), float(momentum), float(l2))


@functools.lru_cache(maxsize=64)
def _optimizer(lr: float, momentum: float, l2: float):
    return optimizer(lr, momentum, l2)


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


def sgd_step(apply_fn: Callable, tx, params, opt_state, x, y):
    """One SGD step on the batch (x, y) with the optax transformation tx: returns (new
    params, new optimiser state, loss before the step). What TrainState.apply_gradients
    does, on bare arrays, so that a packed job can vmap it."""
    import jax
    import optax

    loss, grads = jax.value_and_grad(lambda p: mse_loss(apply_fn(p, x), y))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def _sgd_update(state, x, y):
    params, opt_state, loss = sgd_step(state.apply_fn, state.tx, state.params, state.opt_state, x, y)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), loss


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


def batch_layout(m: int, batch_size: int) -> tuple[int, int]:
    """(effective batch size, steps per epoch): batches of min(batch_size, m), remainder dropped."""
    b = min(int(batch_size), int(m))
    return b, int(m) // b


def step_budget(m: int, batch_size: int, max_steps: int, max_epochs: float | None) -> int:
    """The step cap of a run on m examples: min(max_steps, ceil(max_epochs x steps per epoch));
    max_steps alone when max_epochs is None."""
    if max_epochs is None:
        return int(max_steps)
    spe = batch_layout(m, batch_size)[1]
    return max(1, min(int(max_steps), int(math.ceil(float(max_epochs) * spe - 1e-9))))


def epoch_perm(key, step, m: int, steps_per_epoch: int):
    """The order of the m examples in the epoch of `step`: permutation(fold_in(key, step // E), m)."""
    import jax

    return jax.random.permutation(jax.random.fold_in(key, step // steps_per_epoch), m)


def next_perm(perm, key, step, m: int, steps_per_epoch: int):
    """The permutation for `step`: perm (its epoch's), or the next epoch's at an epoch's first step."""
    from jax import lax

    return lax.cond(
        step % steps_per_epoch == 0, lambda s: epoch_perm(key, s, m, steps_per_epoch), lambda s: perm, step
    )


def epoch_batch(perm, step, x, y, batch_size: int, steps_per_epoch: int):
    """The batch of `step`: slice step % E of its epoch's permutation perm, of x and of y."""
    import jax.numpy as jnp
    from jax import lax

    idx = lax.dynamic_slice_in_dim(perm, (step % steps_per_epoch) * batch_size, batch_size)
    return jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)


def ordered_step(apply_fn, tx, params, opt_state, step, perm, loss_sum, first_bad, x, y, batch_size: int,
                 steps_per_epoch: int):  # fmt: skip
    """The SGD step `step` of a run: :func:`sgd_step` on :func:`epoch_batch` (perm is the
    step's epoch's, :func:`next_perm`). Returns (params, opt_state, loss_sum + the loss,
    first_bad): first_bad is the first step with a non-finite loss, or -1, so that a chunk
    of steps accumulates on device with no host round trip."""
    import jax.numpy as jnp

    xb, yb = epoch_batch(perm, step, x, y, batch_size, steps_per_epoch)
    params, opt_state, loss = sgd_step(apply_fn, tx, params, opt_state, xb, yb)
    bad = jnp.logical_and(first_bad < 0, jnp.logical_not(jnp.isfinite(loss)))
    return params, opt_state, loss_sum + loss, jnp.where(bad, step, first_bad)


def _train_state_step(state, perm, loss_sum, first_bad, x_train, y_train, key, batch_size: int, steps_per_epoch: int):
    """A lone run's step on its TrainState: the permutation refreshed on device at each
    epoch's start, then :func:`ordered_step`."""
    perm = next_perm(perm, key, state.step, x_train.shape[0], steps_per_epoch)
    params, opt_state, loss_sum, first_bad = ordered_step(
        state.apply_fn, state.tx, state.params, state.opt_state, state.step, perm, loss_sum, first_bad,
        x_train, y_train, batch_size, steps_per_epoch,
    )  # fmt: skip
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), perm, loss_sum, first_bad


_train_state_step_jit = _lazy_jit(
    _train_state_step, static_argnames=("batch_size", "steps_per_epoch"), donate_argnums=(0, 1, 2, 3)
)
_epoch_perm_jit = _lazy_jit(epoch_perm, static_argnames=("m", "steps_per_epoch"))


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
    b, spe = batch_layout(m, batch_size)
    perm = _epoch_perm_jit(key, state.step, m=m, steps_per_epoch=spe)
    loss_sum = jnp.zeros((), y_train.dtype)
    first_bad = jnp.asarray(-1, jnp.int32)
    for _ in range(int(n_steps)):
        state, perm, loss_sum, first_bad = _train_state_step_jit(
            state, perm, loss_sum, first_bad, x_train, y_train, key, batch_size=b, steps_per_epoch=spe
        )
    return state, loss_sum / max(int(n_steps), 1), first_bad
