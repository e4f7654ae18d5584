"""Tidy result rows: one CSV row per run, the same columns for every stage, so that
the gathered table (results/tables/runs.csv) is one pandas call away.

Columns (RUN_COLUMNS):
    stage        regression | sgd | ensemble | imagenet (a run of symflow.imagenet.train)
    dataset      the dataset name (symflow.configuration.dataset_id)
    transform    the transform spec (e.g. o3_pixel, so3_path-t0.5)
    group        the transform group (so3_path for every t)
    t            the path parameter, empty for non-path groups
    architecture registry name (FCN, LCN, VEC, GAP, LAP4, LAP8, plug-ins)
    width        hidden width n of a finite network; empty for kernels (n = inf)
    init         first-layer initialisation of a finite network: gaussian | uniform
    inference    ntk | nngp | nn | nn_plus | sgd (ImageNet: the flax example's recipe, App. B.2)
    m            training-set size
    seed         the run's seed (draws tau; with `member`, the init)
    member       ensemble member (0 for an ordinary run)
    ensemble     ensemble size for stage=ensemble rows, else 1
    accuracy     the reported test accuracy: kernels at the ridge chosen on validation; SGD at
                 the evaluation chosen by `selection` (default: best validation accuracy)
    mse          test mean squared error at the same point, mean over examples and the K outputs (K classes; CIFAR-10: 10)
    val_accuracy validation accuracy at the same point
    best_test_accuracy  SGD: the highest test accuracy along training (the paper's App. B.1
                 protocol, selection on test); empty for kernels
    selection    how the reported point was chosen: val (best validation accuracy) | test
    train_accuracy  best training accuracy reached (SGD), empty for kernels
    failed       True if the run failed (SGD: best train accuracy < threshold, collapsed, NaN)
    failure      the failure's kind: collapsed | diverged | budget | members (an ensemble
                 with no successful member); empty for a successful run
    reason       why it failed, in words; empty otherwise
    steps        SGD steps taken
    epochs       SGD epochs taken (steps / steps per epoch)
    eta0         eta0 = 2 N / lambda_max of the finite-width empirical NTK on N training images
                 (sgd.lr_estimate_size; neural-tangents' max_learning_rate), lr = factor * eta0
    lr           the learning rate used
    ridge        kernel ridge chosen on the validation split, relative to the mean diagonal
    wall_time_s  wall time of the run
    path         the run's main output file
    symflow_version, symflow_commit  the symflow that computed the row (symflow.provenance: set
                 by the job that writes it; the commit is empty outside a git checkout)
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Mapping

from symflow.provenance import PROVENANCE_COLUMNS

RUN_COLUMNS = (
    "stage",
    "dataset",
    "transform",
    "group",
    "t",
    "architecture",
    "width",
    "init",
    "inference",
    "m",
    "seed",
    "member",
    "ensemble",
    "accuracy",
    "mse",
    "val_accuracy",
    "best_test_accuracy",
    "selection",
    "train_accuracy",
    "failed",
    "failure",
    "reason",
    "steps",
    "epochs",
    "eta0",
    "lr",
    "ridge",
    "wall_time_s",
    "path",
    *PROVENANCE_COLUMNS,
)
# rows written before the provenance columns existed: read with those columns empty
LEGACY_RUN_COLUMNS = RUN_COLUMNS[: -len(PROVENANCE_COLUMNS)]
STAGES = ("regression", "sgd", "ensemble", "imagenet")
INFERENCES = ("ntk", "nngp", "nn", "nn_plus", "sgd")
FAILURES = ("collapsed", "diverged", "budget", "members")
SELECTIONS = ("val", "test")  # the reported snapshot: best validation accuracy, or best test (App. B.1)


def _cell(value: Any) -> str:
    import numpy as np

    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return "" if math.isnan(value) else repr(value)
    return str(value)


def make_row(**values: Any) -> dict[str, str]:
    """A complete row: every column present (missing ones empty), unknown ones refused; the
    provenance columns name the running symflow unless given."""
    unknown = set(values) - set(RUN_COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns {sorted(unknown)}; allowed: {', '.join(RUN_COLUMNS)}")
    if values.get("stage") not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {values.get('stage')!r}")
    if values.get("inference") not in INFERENCES:
        raise ValueError(f"inference must be one of {INFERENCES}, got {values.get('inference')!r}")
    if values.get("failure") not in (None, "", *FAILURES):
        raise ValueError(f"failure must be empty or one of {FAILURES}, got {values.get('failure')!r}")
    if values.get("selection") not in (None, "", *SELECTIONS):
        raise ValueError(f"selection must be empty or one of {SELECTIONS}, got {values.get('selection')!r}")
    from symflow.provenance import current

    values = {**current(), **values}
    return {c: _cell(values.get(c)) for c in RUN_COLUMNS}


def write_row(path: str | os.PathLike, row: Mapping[str, Any]) -> None:
    """Write one metrics row (with header) atomically."""
    write_rows(path, [row])


def write_rows(path: str | os.PathLike, rows: list[Mapping[str, Any]]) -> None:
    """Write metrics rows (with header) atomically."""
    from symflow.h5io import atomic_path

    full = [make_row(**r) if set(r) != set(RUN_COLUMNS) else dict(r) for r in rows]
    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=RUN_COLUMNS)
            writer.writeheader()
            writer.writerows(full)


def read_rows(paths: list[str | os.PathLike]) -> list[dict[str, str]]:
    rows = []
    for p in paths:
        with open(p, newline="") as fh:
            reader = csv.DictReader(fh)
            columns = tuple(reader.fieldnames or ())
            if columns not in (RUN_COLUMNS, LEGACY_RUN_COLUMNS):
                raise ValueError(f"{p}: columns {reader.fieldnames} are not symflow's RUN_COLUMNS")
            rows.extend({**row, **dict.fromkeys(PROVENANCE_COLUMNS, "")} if columns != RUN_COLUMNS else row
                        for row in reader)  # (the columns in RUN_COLUMNS' order either way)
    return rows


def accuracy(outputs, labels) -> float:
    """Fraction of examples whose largest output is their label (kernels and networks alike)."""
    import numpy as np

    return float(np.mean(np.argmax(outputs, axis=-1) == labels))


def mse(outputs, targets) -> float:
    """Mean over examples and outputs of (f - y)^2, in float64 (twice the loss without L2)."""
    import numpy as np

    return float(np.mean((np.asarray(outputs, dtype=np.float64) - targets) ** 2))


def ensure_parent(path: str | os.PathLike) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p
