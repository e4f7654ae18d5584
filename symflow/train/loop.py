"""The training loop: TrainConfig, train_and_evaluate (chunks of steps, evaluations, the
two snapshots, the stopping and failure criteria, checkpoints) and the RunResult it returns.
A run's bookkeeping between chunks is one _RunTracker, which symflow.train.packed drives too."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from symflow.train.checkpoints import Checkpoint, restore_state, state_dict
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
    """What determines a training run besides its record (model, data, seeds; symflow.runs),
    and two knobs of how it runs rather than what it computes: checkpoint_every (how often a
    resumable state is written) and eval_batch_size (how evaluation is chunked). The
    checkpoint's fingerprint leaves those two out."""

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
    def from_settings(cls, settings: Mapping[str, Any], **speed: Any) -> "TrainConfig":
        """From a run's settings as the workflow gives them (symflow.jobs.Run.settings: the
        config's sgd values that determine a run, already validated, and its recipe under
        'recipe') and speed knobs (checkpoint_every, eval_batch_size), never params."""
        r = settings["recipe"]
        return cls(
            batch_size=int(settings["batch_size"]),
            momentum=float(settings["momentum"]),
            lr_factor=float(r["lr_factor"]),
            l2=float(r["l2"]),
            max_steps=int(settings["max_steps"]),
            max_epochs=None if settings.get("max_epochs") is None else float(settings["max_epochs"]),
            eval_every=int(settings["eval_every"]),
            success_train_accuracy=float(settings["success_train_accuracy"]),
            selection=str(settings.get("selection", "val")),
            **speed,
        )


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


class _RunTracker:
    """One run's bookkeeping between chunks of steps: the curve, the two snapshots and their
    outputs, the stopping and failure criteria, its checkpoint, and the RunResult.

    train_and_evaluate drives one of these; symflow.train.packed drives one per run of a
    packed job, so a packed run stops, fails, selects and checkpoints exactly as a lone one.
    The caller owns the train state: `initial_state` makes it (from the checkpoint where one
    matches), the caller trains `chunk()` steps, evaluates, hands the numbers to `end_chunk`
    and gives the state to `save` when `checkpoint_due`.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        m: int,
        lr: float,
        eta0: float,
        val_shape: tuple[int, ...],
        test_shape: tuple[int, ...],
        checkpoint: Checkpoint | None,
        log: logging.Logger,
        start: float | None = None,
    ):
        self.cfg, self.lr, self.eta0 = cfg, float(lr), float(eta0)
        self.checkpoint, self.log = checkpoint, log
        self.shapes = {"val": tuple(val_shape), "test": tuple(test_shape)}
        self.start = time.perf_counter() if start is None else start
        _, self.steps_per_epoch = batch_layout(m, cfg.batch_size)
        self.budget = cfg.step_budget(m)
        # snapshots: the evaluation of best validation accuracy and the one of best test accuracy
        self.snap: dict[str, dict | None] = {"val": None, "test": None}
        self.outs: dict[str, dict] = {"val": {"test": None, "val": None}, "test": {"test": None, "val": None}}
        self.train_best = 0.0
        self.reference = {"spread": math.nan, "mse": math.nan}  # at initialisation
        self.curve: list[list[float]] = []
        self.wall_before = 0.0
        self.resumed_from = 0
        self.stop, self.reason, self.failure = "cap", "", ""
        self.step = 0
        self.last_saved = 0
        self.done = False

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.start

    def initial_state(self, apply_fn: Callable, params) -> tuple[Any, bool]:
        """(the run's TrainState, whether it resumed): from `params` at step 0, or its
        checkpoint's state where that matches (the bookkeeping restored too)."""
        state = create_train_state(apply_fn, params, self.lr, self.cfg.momentum, self.cfg.l2)
        restored = self.restore()
        return (state, False) if restored is None else (restore_state(state, restored), True)

    def restore(self) -> dict | None:
        """Load the checkpoint if it holds a matching state: the bookkeeping is restored here
        and the train state's dict returned (None: start from step 0)."""
        checkpoint, log = self.checkpoint, self.log
        restored = checkpoint.load() if checkpoint is not None else None
        if restored is not None and int(restored["step"]) > self.budget:
            log.warning(
                "checkpoint at step %s is past the budget of %d steps; starting from step 0", restored["step"], self.budget
            )
            restored = None
        if restored is not None and "snapshots" not in restored:
            log.warning("checkpoint %s is of an older format; starting from step 0", checkpoint.path)
            restored = None
        if restored is None:
            return None
        for which in ("val", "test"):
            stored = restored["snapshots"][which]
            self.snap[which] = {k: (int(stored[k]) if k == "step" else float(stored[k])) for k in _SNAPSHOT_KEYS}
            self.outs[which] = {
                "test": np.asarray(restored["outputs"][which]["test"]),
                "val": np.asarray(restored["outputs"][which]["val"]),
            }
        self.train_best = float(restored["train_best"])
        self.reference = {k: float(v) for k, v in restored["reference"].items()}
        self.curve = [list(map(float, r)) for r in np.asarray(restored["curve"]).tolist()]
        self.wall_before = float(restored["wall_time_s"])
        self.resumed_from = int(restored["step"])
        log.info("resumed from checkpoint %s at step %d", checkpoint.path, self.resumed_from)
        return restored["state"]

    def begin(self, step: int, ev: dict | None) -> None:
        """At the start of training at `step`: ev is the evaluation at initialisation (None
        for a run resumed from its checkpoint)."""
        if ev is not None:
            self._record(0, math.nan, ev)
            self.reference = {"spread": ev["train_spread"], "mse": ev["train_mse"]}
            if not ev["finite"]:
                self.stop, self.reason, self.failure = "nonfinite", "non-finite outputs at initialisation", "diverged"
        self.step = self.last_saved = int(step)
        if self.curve and self.curve[-1][3] >= 1.0 and not self.reason:
            self.stop = "early"
        self.done = bool(self.reason) or self.stop == "early" or self.step >= self.budget

    def chunk(self) -> int:
        """The number of steps to the run's next evaluation."""
        return min(self.cfg.eval_every, self.budget - self.step)

    def _record(self, step: int, train_loss: float, ev: dict) -> None:
        self.curve.append(
            [step, step / self.steps_per_epoch, train_loss]
            + [ev[f"{s}_{q}"] for s in ("train", "val", "test") for q in ("accuracy", "mse")]
            + [self.wall()]
        )
        if not ev["finite"]:
            return
        self.train_best = max(self.train_best, ev["train_accuracy"])
        now = {k: (step if k == "step" else ev[k]) for k in _SNAPSHOT_KEYS}
        for which in ("val", "test"):
            if _better(now, self.snap[which], which):
                self.snap[which] = now
                self.outs[which] = {"test": ev["test_outputs"], "val": ev["val_outputs"]}

    def end_chunk(self, step: int, mean_loss: float, first_bad: int, ev: Callable[[], dict] | dict) -> bool:
        """After a chunk that ended at `step`: the mean mini-batch loss over it, the first step
        with a non-finite loss (or -1), and the evaluation (or a function that makes it,
        called only when a finite chunk needs it). Returns whether the run stopped here
        (a failure, or 100% train accuracy); `done` also says whether it reached its budget."""
        self.step = step = int(step)
        stopped = self._criteria(step, mean_loss, int(first_bad), ev)
        self.done = stopped or step >= self.budget
        return stopped

    def _criteria(self, step: int, mean_loss: float, first_bad: int, ev) -> bool:
        cfg, log = self.cfg, self.log
        if first_bad >= 0:
            self.stop, self.failure = "nonfinite", "diverged"
            self.reason = f"non-finite loss at step {first_bad} (diverged)"
            self.curve.append([step, step / self.steps_per_epoch, math.nan] + [math.nan] * 6 + [self.wall()])
            log.warning("%s", self.reason)
            return True
        ev = ev() if callable(ev) else ev
        self._record(step, float(mean_loss), ev)
        if not ev["finite"]:
            self.stop, self.failure = "nonfinite", "diverged"
            self.reason = f"non-finite outputs at step {step} (diverged)"
            log.warning("%s", self.reason)
            return True
        reference = self.reference
        if ev["train_mse"] > DIVERGE_MSE_RATIO * reference["mse"]:
            self.stop, self.failure = "exploded", "diverged"
            self.reason = (
                f"training MSE {ev['train_mse']:.3g} at step {step} is over {DIVERGE_MSE_RATIO:g}x its initial "
                f"{reference['mse']:.3g} (diverged)"
            )
            log.warning("%s", self.reason)
            return True
        if ev["train_spread"] <= COLLAPSE_SPREAD_RATIO * reference["spread"]:
            self.stop = "collapsed"
            collapse = (
                f"outputs constant over the training set at step {step} (spread {ev['train_spread']:.2g}, "
                f"{reference['spread']:.2g} at init; train accuracy {ev['train_accuracy']:.4f}): collapsed"
            )
            log.warning("%s", collapse)
            if self.train_best < cfg.success_train_accuracy:
                self.reason, self.failure = collapse, "collapsed"
            return True
        log.info(
            "step %d (epoch %.1f): loss %.4g, train %.4f, val %.4f, test %.4f (selected on %s: test %.4f at %d)",
            step,
            step / self.steps_per_epoch,
            float(mean_loss),
            ev["train_accuracy"],
            ev["val_accuracy"],
            ev["test_accuracy"],
            cfg.selection,
            self.snap[cfg.selection]["test_accuracy"],
            self.snap[cfg.selection]["step"],
        )
        if ev["train_accuracy"] >= 1.0:
            self.stop = "early"
            return True
        return False

    def checkpoint_due(self) -> bool:
        """Whether to save now: a checkpoint every cfg.checkpoint_every steps (at the
        evaluation at or after each multiple), never at the budget's end."""
        every = self.cfg.checkpoint_every
        return self.checkpoint is not None and self.step // every > self.last_saved // every and self.step < self.budget

    def save(self, state) -> None:
        """Write the checkpoint: the TrainState (its state_dict, on the host) and the bookkeeping."""
        self.checkpoint.save(
            {
                "step": self.step,
                "state": state_dict(state),
                "snapshots": self.snap,
                "outputs": self.outs,
                "train_best": self.train_best,
                "reference": self.reference,
                "curve": np.asarray(self.curve, np.float64),
                "wall_time_s": self.wall(),
            }
        )
        self.last_saved = self.step
        self.log.info("checkpoint at step %d -> %s", self.step, self.checkpoint.path)

    def after_eval(self, on_eval: Callable[[int], None] | None) -> None:
        """What follows an evaluation the run goes on from: the on_eval hook, the fault point."""
        from symflow.faults import fault_point

        if on_eval is not None:
            on_eval(self.step)
        fault_point("train.eval", str(self.checkpoint.path) if self.checkpoint is not None else "")

    def result(self) -> RunResult:
        cfg, step = self.cfg, self.step
        if not self.reason and self.train_best < cfg.success_train_accuracy:
            self.failure = "budget"
            limit = f"{self.budget} steps = {self.budget / self.steps_per_epoch:g} epochs"
            self.reason = (
                f"best train accuracy {self.train_best:.4f} < {cfg.success_train_accuracy:g} "
                f"after {step} steps ({'the budget of ' + limit if self.stop == 'cap' else self.stop})"
            )
        chosen = self.snap[cfg.selection]
        out = self.outs[cfg.selection]
        if chosen is None:  # nothing finite was ever evaluated
            chosen = dict(step=0, test_accuracy=math.nan, test_mse=math.nan, val_accuracy=math.nan, val_mse=math.nan)
            out = {"test": np.full(self.shapes["test"], np.nan), "val": np.full(self.shapes["val"], np.nan)}
        best_test = self.snap["test"] or dict(step=0, test_accuracy=math.nan)
        return RunResult(
            eta0=self.eta0,
            lr=self.lr,
            steps=step,
            best_step=int(chosen["step"]),
            test_accuracy=float(chosen["test_accuracy"]),
            test_mse=float(chosen["test_mse"]),
            val_accuracy=float(chosen["val_accuracy"]),
            train_accuracy=float(self.train_best),
            failed=bool(self.reason),
            reason=self.reason,
            stop=self.stop,
            test_outputs=np.asarray(out["test"]),
            val_outputs=np.asarray(out["val"]),
            curve=np.asarray(self.curve, np.float64).reshape(-1, len(CURVE_COLUMNS)),
            wall_time_s=self.wall(),
            resumed_from=self.resumed_from,
            failure=self.failure,
            selection=cfg.selection,
            best_test_accuracy=float(best_test["test_accuracy"]),
            best_test_step=int(best_test["step"]),
            epochs=step / self.steps_per_epoch,
        )


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
    import jax.numpy as jnp

    start = time.perf_counter()
    x_tr, y_tr = jnp.asarray(train.x), jnp.asarray(train.y)
    splits = [Split(x_tr, y_tr, np.asarray(train.labels))]
    splits += [Split(jnp.asarray(s.x), jnp.asarray(s.y), np.asarray(s.labels)) for s in (val, test)]
    evaluate = _Evaluator(apply_fn, *splits, batch_size=cfg.eval_batch_size)
    run = _RunTracker(
        cfg,
        m=x_tr.shape[0],
        lr=lr,
        eta0=eta0,
        val_shape=val.y.shape,
        test_shape=test.y.shape,
        checkpoint=checkpoint,
        log=log or _log,
        start=start,
    )

    state, resumed = run.initial_state(apply_fn, params)
    run.begin(int(state.step), None if resumed else evaluate(state.params))
    while not run.done:
        state, mean_loss, first_bad = train_steps(state, x_tr, y_tr, key, run.chunk(), cfg.batch_size)
        first_bad = int(first_bad)  # the one host sync of the chunk
        if run.end_chunk(int(state.step), float(mean_loss), first_bad, lambda: evaluate(state.params)):
            break
        if run.checkpoint_due():
            run.save(state)
        run.after_eval(on_eval)
    return run.result()
