"""The workflow's entry points, which read a data-stage file and write files:
run_estimate_eta0 (eta0.json) and run_sgd (predictions.h5, curve.csv, metrics.csv); run_sgd_packed
trains several such runs as one packed job (symflow.train.packed), each writing its own files."""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from symflow.train.checkpoints import Checkpoint, fingerprint as _fingerprint
from symflow.train.eta0 import Eta0, estimate_eta0, eta0_keys, read_eta0
from symflow.train.evaluation import Split
from symflow.train.loop import CURVE_COLUMNS, RunResult, TrainConfig, train_and_evaluate
from symflow.train.model import build_model, init_key, init_params, order_key
from symflow.train.packed import PackedRun, train_packed
from symflow.train.steps import batch_layout
from symflow.runs import TrainingRun

_log = logging.getLogger("symflow.train")  # the package's one logger, named as before the split


def load_splits(data_path: str | os.PathLike, m: int) -> tuple[Split, Split, Split, dict]:
    """The first m training examples, the validation and test splits of a data-stage file, and
    its attributes (:func:`symflow.data.dataset_classes` reads its class count from them)."""
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
    from symflow.data import dataset_classes
    from symflow.h5io import atomic_path

    log = log or _log
    train, _, _, attrs = load_splits(data_path, m)
    n = min(int(size), int(m))
    model = build_model(arch, hp, width, dataset_classes(attrs))
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


@dataclass(frozen=True)
class RunSetup:
    """A run (its record, symflow.runs.TrainingRun) with its training settings: what the
    checkpoint's fingerprint, the log line that opens the run, the attributes of
    predictions.h5 and the metrics row are written from.

    The record's transform is the spec as the workflow names it (the log line shows it so,
    the files its canonical id). What a run reads at run time (eta0, the data's checksum and
    dtype) and what it reports (its RunResult) are arguments of the methods that write them.
    """

    run: TrainingRun
    cfg: TrainConfig

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", self.run.training_run())  # a job record or strings: the bare record

    @property
    def batch_size(self) -> int:
        """The batch size the run uses: min(cfg.batch_size, m) (:func:`batch_layout`)."""
        return batch_layout(self.run.m, self.cfg.batch_size)[0]

    def fingerprint(self, *, lr: float, data_checksum: str, dtype: Any) -> str:
        """The checkpoint's fingerprint: what determines the trajectory. Its inputs are those
        of checkpoint_format 2, so a checkpoint written before still resumes; max_epochs is
        not one of them (a checkpoint past the budget is refused by train_and_evaluate)."""
        cfg = self.cfg
        return _fingerprint(
            arch=self.run.arch,
            hp=self.run.hp,
            width=self.run.width,
            init=self.run.init,
            m=self.run.m,
            seed=self.run.seed,
            member=self.run.member,
            lr=lr,
            l2=cfg.l2,
            momentum=cfg.momentum,
            batch_size=cfg.batch_size,
            eval_every=cfg.eval_every,
            data=data_checksum,
            dtype=str(dtype),
            checkpoint_format=2,
        )

    def log_line(self, eta0: float, lr: float) -> str:
        """The line that opens the run's log: which run, and its training settings."""
        cfg = self.cfg
        return (
            "%s-w%d (%s init) on %s, %s, m=%d, seed %d, member %d: eta0 %.6g, lr %.6g (x%g), l2 %g, batch %d, "
            "momentum %g, budget %d steps (max_steps %d, max_epochs %s), selection on %s"
        ) % (
            self.run.arch,
            self.run.width,
            self.run.init,
            self.run.transform,
            self.run.recipe,
            self.run.m,
            self.run.seed,
            self.run.member,
            eta0,
            lr,
            cfg.lr_factor,
            cfg.l2,
            self.batch_size,
            cfg.momentum,
            cfg.step_budget(self.run.m),
            cfg.max_steps,
            cfg.max_epochs,
            cfg.selection,
        )

    def attrs(self, result: RunResult, data_checksum: str) -> dict[str, Any]:
        """The root attributes of predictions.h5: the run, its settings and its result."""
        from symflow.groups import parse_spec
        from symflow.h5io import package_versions

        cfg = self.cfg
        return {
            "kind": "sgd_predictions",
            "dataset": self.run.dataset,
            "transform": parse_spec(self.run.transform).id,
            "architecture": self.run.arch,
            "hp": self.run.hp,
            "width": self.run.width,
            "init": self.run.init,
            "recipe": self.run.recipe,
            "m": self.run.m,
            "seed": self.run.seed,
            "member": self.run.member,
            "eta0": result.eta0,
            "lr": result.lr,
            "l2": cfg.l2,
            "momentum": cfg.momentum,
            "batch_size": self.batch_size,
            "max_steps": cfg.max_steps,
            "max_epochs": -1.0 if cfg.max_epochs is None else float(cfg.max_epochs),
            "step_budget": cfg.step_budget(self.run.m),
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
            "data_checksum": data_checksum,
            "outputs_at": (
                "the evaluation with the best validation accuracy (ties: lower validation MSE)"
                if result.selection == "val"
                else "the evaluation with the best test accuracy (App. B.1)"
            ),
            "versions": package_versions(),
        }

    def row(self, result: RunResult, predictions_path: str | os.PathLike) -> dict[str, Any]:
        """The run's metrics row (symflow.results.RUN_COLUMNS)."""
        from symflow.groups import parse_spec

        spec = parse_spec(self.run.transform)
        return dict(
            stage="sgd",
            dataset=self.run.dataset,
            transform=spec.id,
            group=spec.group,
            t=spec.t,
            architecture=self.run.arch,
            width=self.run.width,
            init=self.run.init,
            inference=self.run.recipe,
            m=self.run.m,
            seed=self.run.seed,
            member=self.run.member,
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
        )


@dataclass
class _SgdJob:
    """One run of the sgd stage between reading its inputs and writing its outputs."""

    setup: RunSetup
    train: Split
    val: Split
    test: Split
    data_checksum: str
    eta0: float
    lr: float
    model: Any  # symflow.train.model.Model
    params: Any
    checkpoint: Checkpoint | None
    log: logging.Logger


def _read_sgd_job(data_path, eta0_path, *, run: TrainingRun, cfg: TrainConfig, checkpoint_path, log) -> _SgdJob:
    """Read a run's data and eta0, build its network and initial parameters, open its
    checkpoint, and log the line that opens the run."""
    from symflow.data import dataset_classes

    log = log or _log
    setup = RunSetup(run, cfg)
    run = setup.run
    train, val, test, attrs = load_splits(data_path, run.m)
    data_checksum = attrs.get("content_sha256", "")
    eta0 = read_eta0(eta0_path)
    lr = cfg.lr_factor * eta0
    model = build_model(run.arch, run.model_hp, run.width, dataset_classes(attrs))
    dtype = np.asarray(train.x).dtype
    params = init_params(model.init_fn, init_key(run.seed, run.member), tuple(train.x.shape[1:]), run.init, dtype=dtype)
    ckpt = None
    if checkpoint_path is not None:
        ckpt = Checkpoint(checkpoint_path, setup.fingerprint(lr=lr, data_checksum=data_checksum, dtype=dtype), log)
    log.info("%s", setup.log_line(eta0, lr))
    return _SgdJob(setup, train, val, test, data_checksum, eta0, lr, model, params, ckpt, log)


def _write_sgd_outputs(job: _SgdJob, result: RunResult, *, metrics_path, predictions_path, curve_path,
                       keep_checkpoint: bool, pack_size: int = 1) -> None:  # fmt: skip
    """Log the run's summary, write predictions.h5, curve.csv and metrics.csv, and remove its
    checkpoint (unless keep_checkpoint). A run trained in a pack of R runs says so in
    predictions.h5 (attribute pack_size = R; absent for a run trained alone)."""
    from symflow.h5io import write_h5
    from symflow.results import write_row

    job.log.info(
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
    write_h5(
        predictions_path,
        {
            "test_outputs": result.test_outputs.astype(np.float32),
            "val_outputs": result.val_outputs.astype(np.float32),
            "labels_test": np.asarray(job.test.labels, np.int64),
            "labels_val": np.asarray(job.val.labels, np.int64),
        },
        {**job.setup.attrs(result, job.data_checksum), **({"pack_size": int(pack_size)} if pack_size > 1 else {})},
    )
    write_curve(curve_path, result)
    write_row(metrics_path, job.setup.row(result, predictions_path))
    if job.checkpoint is not None and not keep_checkpoint:
        job.checkpoint.remove()


def run_sgd(
    data_path: str | os.PathLike,
    eta0_path: str | os.PathLike,
    *,
    run: TrainingRun,
    cfg: TrainConfig,
    metrics_path: str | os.PathLike,
    predictions_path: str | os.PathLike,
    curve_path: str | os.PathLike,
    checkpoint_path: str | os.PathLike | None,
    keep_checkpoint: bool = False,
    log: logging.Logger | None = None,
    on_eval: Callable[[int], None] | None = None,
) -> RunResult:
    """One run of the sgd stage: train, then write predictions.h5, curve.csv and metrics.csv.

    A failed run (diverged, or below the success threshold) writes the same files with
    failed=True and its reason; only a broken input raises.
    """
    job = _read_sgd_job(data_path, eta0_path, run=run, cfg=cfg, checkpoint_path=checkpoint_path, log=log)
    result = train_and_evaluate(
        job.model.apply_fn,
        job.params,
        job.train,
        job.val,
        job.test,
        cfg,
        lr=job.lr,
        key=order_key(job.setup.run.seed),
        eta0=job.eta0,
        checkpoint=job.checkpoint,
        log=job.log,
        on_eval=on_eval,
    )
    _write_sgd_outputs(job, result, metrics_path=metrics_path, predictions_path=predictions_path,
                       curve_path=curve_path, keep_checkpoint=keep_checkpoint)  # fmt: skip
    return result


def run_sgd_packed(
    runs: Sequence[Mapping[str, Any]],
    *,
    loop: str | None = None,
    on_eval: Callable[[int, int], None] | None = None,
) -> list[RunResult]:
    """Several runs of the sgd stage as one packed job (symflow.train.packed): `runs` holds
    each run's keyword arguments of :func:`run_sgd` (data_path and eta0_path included, no
    on_eval: its record `run`, its `cfg`, its paths); every run is of one network (arch, hp, width) and data shape. Each run reads
    its own inputs and writes its own predictions.h5, curve.csv, metrics.csv and
    checkpoint, as run_sgd would; on_eval(i, step) is called as train_packed says.
    """
    jobs = []
    for kw in runs:
        kw = dict(kw)
        outputs = {k: kw.pop(k) for k in ("metrics_path", "predictions_path", "curve_path")}
        outputs["keep_checkpoint"] = bool(kw.pop("keep_checkpoint", False))
        kw.setdefault("log", None)
        jobs.append((_read_sgd_job(kw.pop("data_path"), kw.pop("eta0_path"), **kw), outputs))
    first = jobs[0][0].setup.run
    for i, (job, _) in enumerate(jobs[1:], 1):
        run = job.setup.run
        if (run.arch, run.hp, run.width) != (first.arch, first.hp, first.width):
            raise ValueError(f"run {i} is {run.arch}-w{run.width}, run 0 {first.arch}-w{first.width}: "
                             "a packed job trains one network")  # fmt: skip
    specs = [
        PackedRun(job.params, job.train, job.val, job.test, job.setup.cfg, lr=job.lr, key=order_key(job.setup.run.seed),
                  eta0=job.eta0, checkpoint=job.checkpoint, log=job.log)  # fmt: skip
        for job, _ in jobs
    ]
    results = train_packed(jobs[0][0].model.apply_fn, specs, loop=loop, on_eval=on_eval)
    for (job, outputs), result in zip(jobs, results):
        _write_sgd_outputs(job, result, **outputs, pack_size=len(jobs))
    return results


def eta0_kwargs(identity: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """run_estimate_eta0's keyword arguments for a workflow job: `identity`, the job's record
    fields or wildcards (symflow.jobs.Eta0: arch, width, init, hp, m, seed, member, ...), and
    `settings`, its params (symflow.jobs.Jobs.settings: mode, size, and samples for "mc")."""
    from symflow.architectures import ModelHP

    return {
        "arch": str(identity["arch"]),
        "hp": ModelHP.from_tag(str(identity["hp"])),
        "width": int(identity["width"]),
        "init": str(identity["init"]),
        "m": int(identity["m"]),
        "seed": int(identity["seed"]),
        "member": int(identity["member"]),
        "size": settings["size"],
        "mode": settings["mode"],
        "samples": settings.get("samples", 1),  # only the mc estimate averages several
    }
