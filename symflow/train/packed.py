"""Packed training: several runs of one network and one data shape trained as one program.

A packed job holds R runs (seeds, transforms, recipes, ensemble members) whose parameters,
optimiser states, batch-order keys and, where they differ, data are stacked along a leading
axis; one jitted step is ``jax.vmap`` over that axis of the lone run's step
(:func:`symflow.train.steps.ordered_step`: its batch order, optimiser and update, not a copy).
Each run keeps all of its own: its batch order (the same per-epoch permutations as alone),
learning rate, L2 and momentum (traced scalars, not constants), budget, stopping and failure
criteria, selection, checkpoint and log. The bookkeeping between chunks, the checkpoint's
restore included, is the lone loop's own (:class:`symflow.train.loop._RunTracker`), so a
packed run stops, fails, selects and checkpoints where the same run alone would, and returns
the same :class:`RunResult`; the checkpoint file is the lone run's, so either can resume the
other's.

What is equal and what is not: a vmapped convolution is a grouped convolution, so the
numbers agree with separate runs to float32 rounding (tests/test_train_packed.py), not bit
for bit; a run whose accuracy sits on a tie can then stop one evaluation apart.

Runs are stepped together in chunks up to the next evaluation of any run (runs resumed at
different steps, or with different budgets, evaluate at their own steps); a stopped run is
frozen by a mask (its update is discarded) and dropped from the pack once at most half of
the pack still trains (one recompilation each time). The steps of a chunk run as a Python
loop of jitted steps on CPU (XLA:CPU runs convolutions inside loop bodies ~10x slower,
jax#12868) and as one ``lax.fori_loop`` on an accelerator, where per-step dispatch is the
cost that packing amortises.

On CPU packing does not pay (bench/packed_training.py, 8 runs of VEC_16 or VEC_32 at 8 x 8:
0.35-0.45x the rate of the same runs one after another, 0.75-1.3x counting each lone job's
compilation), so the workflow trains one run per job there (``sgd.pack: 1``, the default); on
a GPU a small network uses a sliver of the device and packing is expected to pay (not yet
measured; ``config/gpu.yaml`` packs 8). The workflow's packed jobs are symflow.jobs.Pack,
through :func:`symflow.train.run_sgd_packed`.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from symflow.train.checkpoints import Checkpoint
from symflow.train.evaluation import Split, _Evaluator
from symflow.train.loop import RunResult, TrainConfig, _RunTracker
from symflow.train.steps import batch_layout, epoch_perm, next_perm, optimizer, ordered_step

_log = logging.getLogger("symflow.train")  # the package's one logger, named as before the split

LOOPS = ("python", "device")
# settings every run of a pack must share: they fix the shapes of the compiled step
_SHARED_SETTINGS = ("batch_size", "eval_every", "eval_batch_size")


@dataclass
class PackedRun:
    """One run of a packed job: what :func:`symflow.train.train_and_evaluate` takes besides
    the network's apply_fn (shared by the pack)."""

    params: Any
    train: Split
    val: Split
    test: Split
    cfg: TrainConfig
    lr: float
    key: Any  # the batch-order key (symflow.train.order_key)
    eta0: float = math.nan
    checkpoint: Checkpoint | None = None
    log: logging.Logger | None = None


def check_packable(runs: Sequence[PackedRun]) -> None:
    """ValueError naming what differs if `runs` cannot share one compiled program: the
    shapes and dtypes of parameters and of each split, and cfg.batch_size, eval_every and
    eval_batch_size. Learning rates, L2, momentum, budgets, criteria, selection, seeds and
    the data's values may all differ."""
    import jax

    if not runs:
        raise ValueError("a packed job needs at least one run")
    first = runs[0]
    shape = lambda tree: [(tuple(a.shape), str(a.dtype)) for a in jax.tree_util.tree_leaves(tree)]  # noqa: E731
    ref = jax.tree_util.tree_structure(first.params), shape(first.params)
    for i, r in enumerate(runs[1:], 1):
        if (jax.tree_util.tree_structure(r.params), shape(r.params)) != ref:
            raise ValueError(f"run {i}: its parameters differ in shape from run 0's (another network)")
        for split in ("train", "val", "test"):
            a, b = getattr(first, split), getattr(r, split)
            for field in ("x", "y"):
                if np.shape(getattr(a, field)) != np.shape(getattr(b, field)):
                    raise ValueError(
                        f"run {i}: {split}.{field} has shape {np.shape(getattr(b, field))}, "
                        f"run 0 {np.shape(getattr(a, field))}"
                    )
        for name in _SHARED_SETTINGS:
            if getattr(r.cfg, name) != getattr(first.cfg, name):
                raise ValueError(f"run {i}: cfg.{name} = {getattr(r.cfg, name)}, run 0 {getattr(first.cfg, name)}")


def _stack_or_share(arrays: Sequence[Any]) -> tuple[Any, int | None]:
    """One device array and its vmap axis: shared (axis None) when every run has the same
    values (runs on one dataset), else stacked along a new leading axis 0."""
    import jax.numpy as jnp

    first = np.asarray(arrays[0])
    if all(a is arrays[0] or np.array_equal(np.asarray(a), first) for a in arrays[1:]):
        return jnp.asarray(first), None
    return jnp.asarray(np.stack([np.asarray(a) for a in arrays])), 0


def _take(tree, index):
    import jax

    return jax.tree_util.tree_map(lambda a: a[index], tree)


@functools.lru_cache(maxsize=32)
def _programs(apply_fn: Callable, batch_size: int, steps_per_epoch: int, x_axis, y_axis, loop: str):
    """The jitted programs of a pack: `chunk` (n SGD steps of every active run), `start_perm`
    (each run's permutation at its step) and `outputs` (the network's outputs of every run on
    one chunk of inputs). A step is the lone run's (symflow.train.steps), vmapped."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def update(params, opt_state, step, perm, loss_sum, first_bad, x, y, lr, momentum, l2):
        """One run's step: ordered_step, as alone, with its lr, momentum and l2 traced."""
        return ordered_step(apply_fn, optimizer(lr, momentum, l2), params, opt_state, step, perm, loss_sum,
                            first_bad, x, y, batch_size, steps_per_epoch)  # fmt: skip

    vupdate = jax.vmap(update, in_axes=(0, 0, 0, 0, 0, 0, x_axis, y_axis, 0, 0, 0))

    def step(carry, consts):
        params, opt_state, steps, perm, loss_sum, first_bad = carry
        x, y, keys, lr, momentum, l2, active = consts
        m = x.shape[1 if x_axis == 0 else 0]
        # next_perm of each run, drawn only at a step where an active run starts an epoch (under
        # vmap its lax.cond becomes a select, which would draw them at every step)
        perm = lax.cond(
            jnp.any(jnp.logical_and(steps % steps_per_epoch == 0, active)),
            lambda p: jax.vmap(lambda q, k, s: next_perm(q, k, s, m, steps_per_epoch))(p, keys, steps),
            lambda p: p,
            perm,
        )
        new = vupdate(params, opt_state, steps, perm, loss_sum, first_bad, x, y, lr, momentum, l2)

        def keep(new, old):  # a stopped run keeps its state
            return jnp.where(active.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

        params, opt_state, loss_sum, first_bad = jax.tree_util.tree_map(
            keep, new, (params, opt_state, loss_sum, first_bad)
        )
        return (params, opt_state, steps + active.astype(steps.dtype), perm, loss_sum, first_bad)

    def start_perm(keys, steps, x):
        m = x.shape[1 if x_axis == 0 else 0]
        return jax.vmap(lambda k, s: epoch_perm(k, s, m, steps_per_epoch))(keys, steps)

    if loop == "device":

        def steps_fn(carry, consts, n):
            return lax.fori_loop(0, n, lambda _, c: step(c, consts), carry)

        chunk_jit = jax.jit(steps_fn, donate_argnums=(0,))

        def chunk(carry, consts, n):
            return chunk_jit(carry, consts, jnp.asarray(n, jnp.int32))

    else:
        step_jit = jax.jit(step, donate_argnums=(0,))

        def chunk(carry, consts, n):
            for _ in range(int(n)):
                carry = step_jit(carry, consts)
            return carry

    outputs = jax.jit(jax.vmap(apply_fn, in_axes=(0, x_axis)))
    return chunk, jax.jit(start_perm), outputs


def train_packed(
    apply_fn: Callable,
    runs: Sequence[PackedRun],
    *,
    loop: str | None = None,
    compact: bool = True,
    on_eval: Callable[[int, int], None] | None = None,
) -> list[RunResult]:
    """Train `runs` (one network, one data shape: :func:`check_packable`) as one program and
    return each run's :class:`RunResult`, as :func:`symflow.train.train_and_evaluate` would
    for it alone (to float32 rounding).

    loop: "python" (a Python loop of jitted steps; the default on CPU) or "device" (one
    lax.fori_loop per chunk; the default elsewhere). compact: drop stopped runs from the
    pack once at most half of it trains. on_eval(i, step) is called after each evaluation
    of run i that it goes on from (and its checkpoint), e.g. to interrupt a test run.
    """
    import jax
    import jax.numpy as jnp

    check_packable(runs)
    if loop is None:
        loop = "python" if jax.default_backend() == "cpu" else "device"
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}")
    start = time.perf_counter()
    n_runs = len(runs)
    cfg0 = runs[0].cfg
    m = int(np.shape(runs[0].train.x)[0])
    batch, steps_per_epoch = batch_layout(m, cfg0.batch_size)

    trackers, states, fresh = [], [], []
    for r in runs:
        tracker = _RunTracker(
            r.cfg,
            m=m,
            lr=r.lr,
            eta0=r.eta0,
            val_shape=np.shape(r.val.y),
            test_shape=np.shape(r.test.y),
            checkpoint=r.checkpoint,
            log=r.log or _log,
            start=start,
        )
        state, resumed = tracker.initial_state(apply_fn, r.params)
        trackers.append(tracker)
        states.append(state)
        fresh.append(not resumed)

    # the data: shared by the pack where every run has the same values, else stacked
    data = {}
    for split in ("train", "val", "test"):
        data[split] = {f: _stack_or_share([getattr(getattr(r, split), f) for r in runs]) for f in ("x", "y")}
    x_tr, x_axis = data["train"]["x"]
    y_tr, y_axis = data["train"]["y"]
    evaluators = [
        _Evaluator(apply_fn, *(Split(np.asarray(getattr(r, s).x), getattr(r, s).y, np.asarray(getattr(r, s).labels))
                               for s in ("train", "val", "test")), batch_size=cfg0.eval_batch_size)
        for r in runs
    ]
    eval_batch = evaluators[0].batch_size
    chunk, start_perm, outputs_fn = _programs(apply_fn, batch, steps_per_epoch, x_axis, y_axis, loop)

    stack = lambda trees: jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)  # noqa: E731
    pack = np.arange(n_runs)  # run index of each slot of the pack
    params = stack([s.params for s in states])
    opt_state = stack([s.opt_state for s in states])
    steps = jnp.asarray([int(s.step) for s in states], jnp.int32)
    keys = jnp.stack([jnp.asarray(r.key) for r in runs])
    hyper = {
        "lr": jnp.asarray([r.lr for r in runs], jnp.float32),
        "momentum": jnp.asarray([r.cfg.momentum for r in runs], jnp.float32),
        "l2": jnp.asarray([r.cfg.l2 for r in runs], jnp.float32),
    }
    # each run's TrainState without its arrays: the layout of its checkpoint (and its own optimiser)
    templates = [s.replace(params=None, opt_state=None) for s in states]
    del states

    def evaluate(params, slots: Sequence[int]) -> dict[int, dict]:
        """Evaluations of the runs in `slots` of the pack (outputs of the whole pack, chunked
        and padded as the lone evaluator does)."""
        outs: dict[str, np.ndarray] = {}
        for split in ("train", "val", "test"):
            x, axis = data[split]["x"]
            n = x.shape[1 if axis == 0 else 0]
            if n == 0:
                continue
            parts = []
            for lo in range(0, n, eval_batch):
                xb = x[:, lo : lo + eval_batch] if axis == 0 else x[lo : lo + eval_batch]
                k = xb.shape[1 if axis == 0 else 0]
                if k < eval_batch:
                    pad = [(0, 0)] * xb.ndim
                    pad[1 if axis == 0 else 0] = (0, eval_batch - k)
                    xb = jnp.pad(xb, pad)
                parts.append(np.asarray(outputs_fn(params, xb))[:, :k])
            outs[split] = np.concatenate(parts, axis=1)
        return {int(slot): evaluators[pack[slot]].metrics({s: o[slot] for s, o in outs.items()}) for slot in slots}

    def save(slot: int) -> None:
        r = int(pack[slot])
        trackers[r].save(templates[r].replace(
            step=jnp.asarray(trackers[r].step, jnp.int32), params=_take(params, slot), opt_state=_take(opt_state, slot)
        ))  # fmt: skip

    # evaluations at initialisation of the runs that start afresh
    starting = [slot for slot in range(n_runs) if fresh[slot]]
    evs = evaluate(params, starting) if starting else {}
    for slot in range(n_runs):
        trackers[slot].begin(int(steps[slot]), evs.get(slot))
    del evs

    # per slot: steps since the run's last evaluation, and to its next one
    since = np.zeros(n_runs, np.int64)
    target = np.asarray([t.chunk() if not t.done else 0 for t in trackers], np.int64)
    loss_sum = jnp.zeros(n_runs, y_tr.dtype)
    first_bad = jnp.full(n_runs, -1, jnp.int32)
    perm = start_perm(keys, steps, x_tr)
    while True:
        active = np.asarray([not trackers[r].done for r in pack])
        if not active.any():
            break
        if compact and len(pack) > 1 and 2 * int(active.sum()) <= len(pack):  # drop the stopped runs
            keep = np.flatnonzero(active)
            params, opt_state = _take(params, keep), _take(opt_state, keep)
            steps, perm, loss_sum, first_bad = steps[keep], perm[keep], loss_sum[keep], first_bad[keep]
            keys = keys[keep]
            hyper = {k: v[keep] for k, v in hyper.items()}
            since, target = since[keep], target[keep]
            data = {s: {f: (a[keep], 0) if axis == 0 else (a, None) for f, (a, axis) in d.items()} for s, d in data.items()}
            x_tr, y_tr = data["train"]["x"][0], data["train"]["y"][0]
            pack = pack[keep]
            active = active[keep]
        n = int(np.min((target - since)[active]))
        consts = (x_tr, y_tr, keys, hyper["lr"], hyper["momentum"], hyper["l2"], jnp.asarray(active))
        params, opt_state, steps, perm, loss_sum, first_bad = chunk(
            (params, opt_state, steps, perm, loss_sum, first_bad), consts, n
        )
        since[active] += n
        due = [slot for slot in np.flatnonzero(active) if since[slot] == target[slot]]
        host_steps, host_loss, host_bad = np.asarray(steps), np.asarray(loss_sum), np.asarray(first_bad)
        evs: dict[int, dict] = {}

        def ev(slot: int) -> dict:
            if not evs:  # one evaluation of the pack serves every run due now
                evs.update(evaluate(params, due))
            return evs[slot]

        for slot in due:
            tracker = trackers[pack[slot]]
            mean_loss = float(np.float32(host_loss[slot]) / np.float32(since[slot]))
            stopped = tracker.end_chunk(int(host_steps[slot]), mean_loss, int(host_bad[slot]), lambda s=slot: ev(s))
            since[slot] = 0
            target[slot] = tracker.chunk() if not tracker.done else 0
            if stopped:
                continue
            if tracker.checkpoint_due():
                save(slot)
            tracker.after_eval(None if on_eval is None else functools.partial(on_eval, int(pack[slot])))
        reset = np.zeros(len(pack), bool)
        reset[due] = True
        loss_sum = jnp.where(jnp.asarray(reset), jnp.zeros_like(loss_sum), loss_sum)
        first_bad = jnp.where(jnp.asarray(reset), jnp.full_like(first_bad, -1), first_bad)
    return [t.result() for t in trackers]
