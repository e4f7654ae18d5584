"""The tables of the ImageNet runs: one learning-curve point per run, and each run's history.

Every run writes, beside the metrics row of symflow.results.RUN_COLUMNS (stage ``imagenet``)
that runs.csv gathers with the CIFAR runs, one row of :data:`POINT_COLUMNS` (point.csv):

    model        registry name (ResNet18 .. ResNet200, MixerS16, ResNetTiny, MixerTiny)
    transform    the transform spec (identity, o3_pixel, perm, ...)
    group        its group
    seed         the run's seed: draws tau, the initialisation and the data order
    subset_seed  draws the one permutation whose prefixes are the subsets
    subset       i of m_i = floor(2^(-i/2) m_total), empty if m is not one of them
    m            training images
    image_size   side of the network input
    epochs       epochs over the m images, steps, batch_size: the run's length
    top1, top5   final test (ILSVRC2012 validation) accuracy
    error        1 - top1
    loss         final mean test cross-entropy
    best_top1    the highest test top-1 along training
    train_loss   the last logged training cross-entropy (no weight decay term)
    failed       True if training diverged (non-finite loss), with its reason
    images_per_s training throughput (all devices), median over the log windows
    wall_time_s  wall time of the run, all its resumptions together
    dataset      the dataset name the caller gave
    path         the run's main file (run.h5: the history and where the run came from)
    symflow_version, symflow_commit  the symflow that ran it (symflow.provenance)

and its history (run.h5, gathered by :func:`gather_history` into :data:`HISTORY_COLUMNS`):
one row per evaluation, for Fig. S4 (test accuracy against epochs), with the symflow version and
commit that run.h5 records.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Mapping

from symflow.provenance import PROVENANCE_COLUMNS

POINT_COLUMNS = ("model", "transform", "group", "seed", "subset_seed", "subset", "m", "image_size", "epochs",
                 "steps", "batch_size", "top1", "top5", "error", "loss", "best_top1", "train_loss", "failed",
                 "reason", "images_per_s", "wall_time_s", "dataset", "path", *PROVENANCE_COLUMNS)
LEGACY_POINT_COLUMNS = POINT_COLUMNS[: -len(PROVENANCE_COLUMNS)]  # point.csv from before those columns
HISTORY_ARRAYS = ("epoch", "step", "test_top1", "test_top5", "test_loss", "train_loss", "train_top1", "lr",
                  "images_per_s")
HISTORY_COLUMNS = ("model", "transform", "seed", "m", "subset", *HISTORY_ARRAYS, "path", *PROVENANCE_COLUMNS)
POINT_NUMERIC = ("seed", "subset_seed", "subset", "m", "image_size", "epochs", "steps", "batch_size", "top1", "top5",
                 "error", "loss", "best_top1", "train_loss", "images_per_s", "wall_time_s")


def _write_csv(path: str | os.PathLike, columns, rows: list[Mapping[str, Any]]) -> None:
    from symflow.h5io import atomic_path
    from symflow.results import _cell

    unknown = {k for r in rows for k in r} - set(columns)
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}; allowed: {', '.join(columns)}")
    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows({c: _cell(r.get(c)) for c in columns} for r in rows)


def write_point(out: str | os.PathLike, **values: Any) -> None:
    """Write one run's learning-curve point (POINT_COLUMNS; missing columns empty; the provenance
    columns the running symflow's unless given) to `out`."""
    from symflow.provenance import current

    _write_csv(out, POINT_COLUMNS, [{**current(), **values}])


def gather_points(point_files: list[str | os.PathLike], out: str | os.PathLike) -> int:
    """Concatenate the runs' point.csv files into one table (sorted); returns its row count."""
    import pandas as pd

    from symflow.h5io import atomic_path

    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted(set(map(str, point_files)))]
    for i, (p, f) in enumerate(zip(sorted(set(map(str, point_files))), frames)):
        if tuple(f.columns) == LEGACY_POINT_COLUMNS:
            frames[i] = f.assign(**dict.fromkeys(PROVENANCE_COLUMNS, ""))
        elif tuple(f.columns) != POINT_COLUMNS:
            raise ValueError(f"{p}: columns are not symflow's ImageNet POINT_COLUMNS")
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(POINT_COLUMNS))
    numeric = ("seed", "m")
    frame = frame.sort_values(["model", "transform", "seed", "m"], kind="stable",
                              key=lambda c: pd.to_numeric(c, errors="coerce").fillna(0) if c.name in numeric else c)
    with atomic_path(out, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)


def load_points(path: str | os.PathLike):
    """The gathered point table with numeric columns numeric and `failed` boolean."""
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if tuple(frame.columns) == LEGACY_POINT_COLUMNS:  # gathered before the provenance columns existed
        frame = frame.assign(**dict.fromkeys(PROVENANCE_COLUMNS, ""))
    if tuple(frame.columns) != POINT_COLUMNS:
        raise ValueError(f"{Path(path)}: columns are not symflow's ImageNet POINT_COLUMNS")
    for c in POINT_NUMERIC:
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame["failed"] = frame["failed"].str.lower().eq("true")
    return frame


def gather_history(run_files: list[str | os.PathLike], out: str | os.PathLike) -> int:
    """Every evaluation of every run (run.h5 files) as one long table; returns its row count."""
    from symflow.h5io import read_h5

    rows = []
    for path in sorted(set(map(str, run_files))):
        arrays, attrs = read_h5(path)
        ident = {k: attrs.get(k) for k in ("model", "transform", "seed", "m", "subset")}
        versions = attrs.get("versions") or {}
        made_by = {"symflow_version": versions.get("symflow", ""), "symflow_commit": versions.get("symflow_commit", "")}
        for j in range(len(arrays["epoch"])):
            rows.append({**ident, **{k: arrays[k][j].item() for k in HISTORY_ARRAYS}, "path": path, **made_by})
    _write_csv(out, HISTORY_COLUMNS, rows)
    return len(rows)


def load_history(path: str | os.PathLike):
    import pandas as pd

    frame = pd.read_csv(path, dtype=dict.fromkeys(PROVENANCE_COLUMNS, str))
    if tuple(frame.columns) == HISTORY_COLUMNS[: -len(PROVENANCE_COLUMNS)]:  # from before those columns
        frame = frame.assign(**dict.fromkeys(PROVENANCE_COLUMNS, ""))
    if tuple(frame.columns) != HISTORY_COLUMNS:
        raise ValueError(f"{Path(path)}: columns are not symflow's ImageNet HISTORY_COLUMNS")
    return frame
