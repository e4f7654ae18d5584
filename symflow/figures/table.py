"""The gathered table of every run (results/tables/runs.csv): one row per run."""

from __future__ import annotations

import os
from pathlib import Path

from symflow.results import RUN_COLUMNS, read_rows

NUMERIC = ("t", "width", "m", "seed", "member", "ensemble", "accuracy", "mse", "val_accuracy",
           "best_test_accuracy", "train_accuracy", "steps", "epochs", "eta0", "lr", "ridge", "wall_time_s")


def gather(row_files: list[str | os.PathLike], out: str | os.PathLike) -> int:
    """Concatenate per-run metrics rows (deduplicated by run path) into one CSV; returns the row count."""
    import pandas as pd

    from symflow.h5io import atomic_path

    rows = read_rows(sorted(set(map(str, row_files))))
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS)).drop_duplicates(subset=["path", "stage", "inference"])
    frame = frame.sort_values(["stage", "architecture", "transform", "inference", "width", "m", "seed", "member"],
                              kind="stable")
    with atomic_path(out, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)


def load_runs(path: str | os.PathLike):
    """The table as a DataFrame with numeric columns numeric and `failed` boolean."""
    import pandas as pd

    frame = pd.read_csv(path, dtype={c: "string" for c in RUN_COLUMNS if c not in NUMERIC})
    for c in NUMERIC:
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame["failed"] = frame["failed"].fillna("False").str.lower().eq("true").astype(bool)
    for c in ("reason", "failure", "selection", "init", "group", "transform"):
        frame[c] = frame[c].fillna("")
    if list(frame.columns) != list(RUN_COLUMNS):
        raise ValueError(f"{Path(path)}: columns are not symflow's RUN_COLUMNS")
    return frame


SUMMARY_COLUMNS = ("architecture", "width", "inference", "runs", "converged", "budget", "collapsed", "diverged",
                   "median_epochs", "median_steps", "median_wall_s", "total_wall_min")


def training_summary(frame):
    """One row per (architecture, width, recipe) of the finite-network runs (stage sgd), and a last
    row 'all': how many ran, how many converged (reached the success threshold, not failed), how
    many failed for each reason, median epochs, steps and wall time per run, and total wall time."""
    import pandas as pd

    sgd = frame[frame["stage"] == "sgd"]

    def one(g, key):
        return dict(
            zip(("architecture", "width", "inference"), key),
            runs=len(g),
            converged=int((~g["failed"]).sum()),
            **{kind: int((g["failure"] == kind).sum()) for kind in ("budget", "collapsed", "diverged")},
            median_epochs=float(g["epochs"].median()),
            median_steps=float(g["steps"].median()),
            median_wall_s=float(g["wall_time_s"].median()),
            total_wall_min=float(g["wall_time_s"].sum() / 60),
        )

    rows = [one(g, key) for key, g in sgd.groupby(["architecture", "width", "inference"], sort=True)]
    if len(sgd):
        rows.append(one(sgd, ("all", pd.NA, "")))
    out = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    out["width"] = out["width"].astype("Int64")
    return out


def write_training_summary(runs_csv: str | os.PathLike, out_csv: str | os.PathLike):
    """training_summary of a gathered runs.csv, written atomically; returns the table."""
    from symflow.h5io import atomic_path

    table = training_summary(load_runs(runs_csv))
    with atomic_path(out_csv, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
    return table
