"""Ensembles of finite networks and S-Dist (App. E of Xiao & Pennington, ICML 2022).

An ensemble is k members trained on the same data from independent initialisations
(members i0..i{k-1} of one run: same seed, so same data and batch order, different
init keys). Its prediction approximates E_theta0 A(D)(x) (S16).

    S-Dist(A1, A2) = E_x |E_theta0 A1(D; theta0)(x) - A2(D)(x)|^2        (S15, S16)

with |.|^2 the squared Euclidean norm over the K outputs (K classes; CIFAR-10: 10) and E_x
the mean over test images. Fig. S1 compares ensembles of VEC_n along the so3_path tau_t with VEC_inf
(kernel regression, NTK) and with GAP_n.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Sequence

import numpy as np

from symflow.provenance import PROVENANCE_COLUMNS, current
from symflow.train import s_dist  # noqa: F401  (re-exported: the definition lives with the metrics)

SDIST_COLUMNS = (
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
    "ensemble",
    "members_used",
    "failed_members",
    "reference",
    "reference_transform",
    "sdist",
    "accuracy",
    "path",
    "reference_path",
    *PROVENANCE_COLUMNS,  # the symflow that computed the row (symflow.provenance)
)

_log = logging.getLogger("symflow.ensemble")


def average_outputs(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of member outputs (each (n, K)), in float64."""
    if not outputs:
        raise ValueError("an ensemble needs at least one member")
    shapes = {np.shape(o) for o in outputs}
    if len(shapes) != 1:
        raise ValueError(f"member outputs have different shapes {sorted(shapes)}")
    return np.mean(np.stack([np.asarray(o, np.float64) for o in outputs]), axis=0)


def run_average_ensemble(
    prediction_paths: Sequence[str | os.PathLike],
    metrics_paths: Sequence[str | os.PathLike],
    *,
    mean_path: str | os.PathLike,
    metrics_path: str | os.PathLike,
    log: logging.Logger | None = None,
) -> dict:
    """Average the test (and val) outputs of an ensemble's members; write mean.h5 and a metrics row.

    Members whose run failed (diverged, or below the train-accuracy threshold) are left
    out, as the paper averages successful runs; if none succeeded, all are averaged and
    the row is marked failed.
    """
    from symflow.h5io import package_versions, read_h5, write_h5
    from symflow.results import read_rows, write_row

    log = log or _log
    rows = read_rows(list(metrics_paths))
    preds = [read_h5(p) for p in prediction_paths]
    ok = [i for i, r in enumerate(rows) if r["failed"] != "True"]
    failed_members = [int(rows[i]["member"]) for i in range(len(rows)) if i not in ok]
    use = ok or list(range(len(rows)))
    if failed_members:
        log.warning("members %s failed; %s", failed_members, "left out" if ok else "no member succeeded: averaging all")
    test = average_outputs([preds[i][0]["test_outputs"] for i in use])
    val = average_outputs([preds[i][0]["val_outputs"] for i in use])
    labels_test = preds[0][0]["labels_test"]
    labels_val = preds[0][0]["labels_val"]
    first_attrs = preds[0][1]
    write_h5(
        mean_path,
        {
            "test_outputs": test.astype(np.float32),
            "val_outputs": val.astype(np.float32),
            "labels_test": labels_test,
            "labels_val": labels_val,
        },
        {
            "kind": "ensemble_mean",
            "members": [int(r["member"]) for r in rows],
            "members_used": [int(rows[i]["member"]) for i in use],
            "failed_members": failed_members,
            "member_paths": [str(p) for p in prediction_paths],
            **{
                k: first_attrs[k]
                for k in ("dataset", "transform", "architecture", "hp", "width", "init", "recipe", "m", "seed")
                if k in first_attrs
            },
            "versions": package_versions(),
        },
    )
    from symflow.train import accuracy, mse

    acc = accuracy(test, labels_test)
    y_test = np.eye(test.shape[-1])[labels_test]
    r0 = rows[0]
    reason = ""
    if not ok:
        reason = f"every member failed ({len(rows)})"
    elif failed_members:
        reason = ""  # a partial ensemble is still a result; members_used is in mean.h5
    row = {
        k: r0[k]
        for k in ("dataset", "transform", "group", "t", "architecture", "width", "init", "inference", "m", "seed")
    }
    row.update(
        stage="ensemble",
        member="",
        ensemble=len(rows),
        accuracy=acc,
        mse=mse(test, y_test),
        val_accuracy=accuracy(val, labels_val),
        train_accuracy=min(float(rows[i]["train_accuracy"] or "nan") for i in use),
        failed=not ok,
        failure="" if ok else "members",
        reason=reason,
        selection=r0.get("selection", ""),
        steps=max(int(rows[i]["steps"] or 0) for i in use),
        eta0=float(np.mean([float(rows[i]["eta0"]) for i in use])),
        lr=float(np.mean([float(rows[i]["lr"]) for i in use])),
        wall_time_s=sum(float(r["wall_time_s"] or 0) for r in rows),
        path=str(mean_path),
    )
    write_row(metrics_path, row)
    log.info("ensemble of %d (%d used): test accuracy %.4f", len(rows), len(use), acc)
    return row


def run_s_dist(
    ensemble_path: str | os.PathLike,
    references: dict[str, tuple[str | os.PathLike, str]],
    *,
    out_path: str | os.PathLike,
    log: logging.Logger | None = None,
) -> list[dict]:
    """S-Dist of an ensemble mean against references; one CSV row per reference.

    references: name -> (path of an HDF5 file with `test_outputs`, the transform it was
    computed on). Both sides must have the same test labels (the same test split).
    """
    from symflow.groups import parse_spec
    from symflow.h5io import read_h5, write_csv
    from symflow.train import accuracy

    log = log or _log
    arrays, attrs = read_h5(ensemble_path)
    ens = arrays["test_outputs"]
    spec = parse_spec(attrs["transform"])
    rows = []
    for name, (path, ref_transform) in references.items():
        ref, ref_attrs = read_h5(path)
        if "labels_test" in ref and not np.array_equal(ref["labels_test"], arrays["labels_test"]):
            raise ValueError(f"{path}: its test labels differ from {ensemble_path}'s; not the same test split")
        d = s_dist(ens, ref["test_outputs"])
        log.info("S-Dist(%s, %s) = %.6g", attrs.get("architecture"), name, d)
        rows.append(
            {
                "dataset": attrs.get("dataset", ""),
                "transform": spec.id,
                "group": spec.group,
                "t": "" if spec.t is None else repr(spec.t),
                "architecture": attrs.get("architecture", ""),
                "width": attrs.get("width", ""),
                "init": attrs.get("init", ""),
                "inference": attrs.get("recipe", ""),
                "m": attrs.get("m", ""),
                "seed": attrs.get("seed", ""),
                "ensemble": len(attrs.get("members", [])),
                "members_used": len(attrs.get("members_used", [])),
                "failed_members": len(attrs.get("failed_members", [])),
                "reference": name,
                "reference_transform": ref_transform,
                "sdist": repr(d) if math.isfinite(d) else "",
                "accuracy": repr(accuracy(ens, arrays["labels_test"])),
                "path": str(ensemble_path),
                "reference_path": str(path),
                **current(),
            }
        )
    write_csv(out_path, rows, SDIST_COLUMNS)
    return rows


def sdist_table(sdist_files: Sequence[str | os.PathLike], out_path: str | os.PathLike, gap_prefix: str = "GAP_") -> int:
    """Fig. S1's table: one row per (architecture, width, t) ensemble, wide, from per-ensemble S-Dist files.

    Columns: architecture, width, t, m, seed, ensemble, members_used, failed_members (all of
    them: no member succeeded, the mean is of failed runs), inference, accuracy,
    sdist_gap (the reference named ``GAP_<width>``), sdist_vec_inf (``<architecture>_inf``),
    path, and the S-Dist job's symflow_version and symflow_commit. Returns the row count.
    """
    import pandas as pd

    from symflow.h5io import atomic_path

    text = {"t": str, **dict.fromkeys(PROVENANCE_COLUMNS, str)}
    frames = [pd.read_csv(p, dtype=text) for p in sorted(set(map(str, sdist_files)))]
    long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(SDIST_COLUMNS))
    if long.empty:
        raise ValueError(f"no S-Dist rows in {len(frames)} files to gather")
    long["t"] = pd.to_numeric(long["t"], errors="coerce").fillna(0.0)
    if "failed_members" not in long:  # files written before the column existed
        long["failed_members"] = 0
    for column in PROVENANCE_COLUMNS:  # likewise (the S-Dist job's symflow: symflow.provenance)
        long[column] = long[column].fillna("").astype(str) if column in long else ""
    keys = ["architecture", "width", "t", "m", "seed", "ensemble", "members_used", "failed_members", "inference",
            "accuracy", *PROVENANCE_COLUMNS, "path"]
    rows = []
    for key, group in long.groupby(keys, sort=True, dropna=False):
        row = dict(zip(keys, key))
        by_ref = dict(zip(group["reference"], group["sdist"]))
        gap = [v for r, v in by_ref.items() if str(r).startswith(gap_prefix)]
        inf = [v for r, v in by_ref.items() if str(r).endswith("_inf")]
        if len(gap) != 1 or len(inf) != 1:
            raise ValueError(f"{row['path']}: expected one GAP_n and one _inf reference, got {sorted(by_ref)}")
        row["sdist_gap"], row["sdist_vec_inf"] = gap[0], inf[0]
        rows.append(row)
    table = pd.DataFrame(rows, columns=keys[:-3] + ["sdist_gap", "sdist_vec_inf", "path", *PROVENANCE_COLUMNS])
    table = table.sort_values(["architecture", "width", "t"], kind="stable")
    with atomic_path(out_path, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    return len(table)


def ensemble_runs(table):
    """Fig. S1's S-Dist table (:func:`sdist_table`) with each ensemble's members counted: runs
    (members), ok (successful members), failed (no member succeeded: its mean is of failed runs,
    never a data point) and failure ('members' where none did). Used by the figure and the claims."""
    import pandas as pd

    runs = pd.to_numeric(table["ensemble"], errors="coerce").fillna(0).astype(int)
    if "failed_members" in table:
        ok = runs - pd.to_numeric(table["failed_members"], errors="coerce").fillna(0).astype(int)
    else:
        ok = pd.to_numeric(table.get("members_used", runs), errors="coerce").fillna(0).astype(int)
    if "failed" in table:
        ok = ok.where(~table["failed"].astype(str).str.lower().eq("true"), 0)
    failed = ok <= 0
    kind = table["failure"].fillna("").astype(str) if "failure" in table else pd.Series("", index=table.index)
    return table.assign(runs=runs, ok=ok.clip(lower=0), failed=failed,
                        failure=np.where(failed, kind.where(kind != "", "members"), ""))
