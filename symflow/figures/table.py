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
