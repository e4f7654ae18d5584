"""The gathered table of every run (results/tables/runs.csv): one row per run."""

from __future__ import annotations

import os
from pathlib import Path

from symflow.provenance import PROVENANCE_COLUMNS
from symflow.results import LEGACY_RUN_COLUMNS, RUN_COLUMNS, read_rows

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
    if tuple(frame.columns) == LEGACY_RUN_COLUMNS:  # gathered before the provenance columns existed
        frame = frame.assign(**dict.fromkeys(PROVENANCE_COLUMNS, ""))
    for c in NUMERIC:
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame["failed"] = frame["failed"].fillna("False").str.lower().eq("true").astype(bool)
    for c in ("reason", "failure", "selection", "init", "group", "transform", *PROVENANCE_COLUMNS):
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
    """training_summary of a gathered runs.csv, written atomically with the provenance of the
    symflow that summarised it (symflow.provenance.stamp); returns the table."""
    from symflow.h5io import atomic_path
    from symflow.provenance import stamp

    table = stamp(training_summary(load_runs(runs_csv)))
    with atomic_path(out_csv, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
    return table


# -- training curves (results/tables/curves.csv) ------------------------------------------------

# a run's identity and outcome, from its metrics row (RUN_COLUMNS)
CURVE_IDENTITY = ("dataset", "transform", "group", "t", "architecture", "width", "init", "inference", "m", "seed",
                  "member", "failed", "failure")


def curve_table_columns() -> tuple[str, ...]:
    """curves.csv's columns: the run's identity, the figures that show it, one evaluation of the
    run (symflow.train.CURVE_COLUMNS: step, epoch, train/val/test accuracy and MSE, train loss,
    wall time since the run started), the run's path (as in runs.csv) and its provenance."""
    from symflow.train.loop import CURVE_COLUMNS

    return (*CURVE_IDENTITY, "figures", *CURVE_COLUMNS, "path", *PROVENANCE_COLUMNS)


def gather_curves(figures: dict[str, list[str | os.PathLike]], metrics: list[str | os.PathLike],
                  out: str | os.PathLike) -> int:
    """curves.csv: one row per finite-network run and evaluation, from each run's curve.csv and,
    in the same folder, its metrics.csv (its identity, outcome, path and provenance).

    figures: figure -> the curve.csv files of the runs it shows; `figures` names them, space
    separated (a run of Fig. 2 and Fig. S5 has 'fig2 figS5'). metrics: every such run's
    metrics.csv. Returns the row count."""
    import pandas as pd

    from symflow.h5io import atomic_path

    shown: dict[str, list[str]] = {}
    for figure, paths in figures.items():
        for p in paths:
            shown.setdefault(str(Path(p)), []).append(figure)
    paths = sorted(map(str, metrics))
    rows = {str(Path(p).parent): r for p, r in zip(paths, _rows_of(paths))}  # a run's folder -> its row
    frames = []
    for curve, names in sorted(shown.items()):
        run = rows.get(str(Path(curve).parent))
        if run is None:
            raise ValueError(f"{curve}: no metrics.csv beside it among the inputs")
        frame = pd.read_csv(curve, dtype=float)
        ident = {c: run[c] for c in CURVE_IDENTITY}
        frames.append(frame.assign(**ident, figures=" ".join(names), path=run["path"],
                                   **{c: run[c] for c in PROVENANCE_COLUMNS}))
    columns = list(curve_table_columns())
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    table = pd.DataFrame(table, columns=columns)
    table["step"] = table["step"].astype("Int64")
    with atomic_path(out, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    return len(table)


def _rows_of(paths: list[str]) -> list[dict[str, str]]:
    """The one metrics row of each file, in order."""
    out = []
    for p in paths:
        rows = read_rows([p])
        if len(rows) != 1:
            raise ValueError(f"{p}: {len(rows)} metrics rows, expected one")
        out.append(rows[0])
    return out


CURVE_NUMERIC = ("t", "width", "m", "seed", "member")


def load_curves(path: str | os.PathLike):
    """curves.csv as a DataFrame: identity numbers numeric, `failed` boolean, text columns text."""
    import pandas as pd

    from symflow.train.loop import CURVE_COLUMNS

    columns = curve_table_columns()
    text = {c: "string" for c in columns if c not in (*CURVE_NUMERIC, *CURVE_COLUMNS)}
    frame = pd.read_csv(path, dtype=text)
    if tuple(frame.columns) != columns:
        raise ValueError(f"{Path(path)}: columns are not symflow's curves.csv columns")
    for c in (*CURVE_NUMERIC, *CURVE_COLUMNS):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame["failed"] = frame["failed"].fillna("False").str.lower().eq("true").astype(bool)
    for c in ("failure", "init", "figures", "transform", "group", *PROVENANCE_COLUMNS):
        frame[c] = frame[c].fillna("")
    return frame
