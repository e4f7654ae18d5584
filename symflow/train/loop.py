"""The training loop: TrainConfig, train_and_evaluate (chunks of steps, evaluations, the
two snapshots, the stopping and failure criteria, checkpoints) and the RunResult it returns."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from symflow.train.checkpoints import Checkpoint
from symflow.train.evaluation import SELECTIONS, Split, _better, _Evaluator
from symflow.train.steps import batch_layout, create_train_state, step_budget, train_steps

RECIPES = ("nn", "nn_plus")

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

_log = logging.getLogger("symflow.train")  # the package's one logger, named as before the split


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
    batch, steps_per_epoch = batch_layout(x_tr.shape[0], cfg.batch_size)
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
