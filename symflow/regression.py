"""Kernel regression at infinite training time, the ridge chosen on the validation split.

For a kernel K (NTK or NNGP) on the first m training examples, the prediction of an
infinitely wide network trained to convergence on MSE (gradient flow for the NTK,
the posterior mean for the NNGP) is

    f(x*) = K(x*, X) (K(X, X) + r * mean(diag K(X, X)) I)^-1 Y,

which is what neural-tangents' ``predict.gradient_descent_mse_ensemble(...)(t=None)``
computes with ``diag_reg=r`` (its default ``diag_reg_absolute_scale=False`` scales the
ridge by the mean of the diagonal). The whole ridge grid is solved from one
eigendecomposition K = V diag(w) V^T in float64: f = K(x*, X) V diag(1 / (w + reg)) V^T Y.
A ridge the spectrum cannot support (w + reg not positive, or numerically singular:
smallest / largest below m * float64 eps, numpy's rank tolerance, or a non-finite
result) is skipped with a logged message; the ridge with the best validation accuracy is chosen
(ties: the lower validation MSE, then the smaller ridge).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from symflow.results import accuracy as _accuracy
from symflow.results import mse as _mse

_log = logging.getLogger("symflow.regression")


class RegressionError(RuntimeError):
    """No ridge of the grid gives a usable solution."""


@dataclass
class GridFit:
    ridge_grid: np.ndarray  # the grid as given
    usable: np.ndarray  # bool per ridge
    val_accuracy: np.ndarray  # NaN where unusable
    val_mse: np.ndarray
    best: int  # index into the grid
    val_outputs: np.ndarray  # at the chosen ridge
    test_outputs: np.ndarray
    scale: float  # mean of diag K_train
    min_eigenvalue: float

    @property
    def ridge(self) -> float:
        return float(self.ridge_grid[self.best])


def fit_ridge_grid(
    k_train: np.ndarray,
    y_train: np.ndarray,
    k_val: np.ndarray,
    y_val: np.ndarray,
    k_test: np.ndarray,
    ridge_grid: Sequence[float],
    *,
    labels_val: np.ndarray | None = None,
    source: str = "the kernel",
    log: logging.Logger | None = None,
) -> GridFit:
    """Solve the regression for every ridge from one eigendecomposition; choose on validation.

    k_train (m, m), k_val (n_val, m), k_test (n_test, m); y_* one-hot (n, K).
    """
    log = log or _log
    k = np.asarray(k_train, dtype=np.float64)
    k = 0.5 * (k + k.T)
    y = np.asarray(y_train, dtype=np.float64)
    y_val = np.asarray(y_val, dtype=np.float64)
    labels_val = np.argmax(y_val, axis=-1) if labels_val is None else np.asarray(labels_val)
    grid = np.asarray(list(ridge_grid), dtype=np.float64)
    if grid.ndim != 1 or not len(grid) or (grid < 0).any():
        raise ValueError(f"ridge_grid must be a non-empty list of ridges >= 0, got {list(ridge_grid)}")
    scale = float(np.mean(np.diag(k)))
    if not np.isfinite(k).all() or not np.isfinite(scale):
        raise RegressionError(f"{source}: the training kernel has non-finite entries")
    w, v = np.linalg.eigh(k)
    vy = v.T @ y  # (m, K)
    kv_val = np.asarray(k_val, dtype=np.float64) @ v  # (n_val, m)
    acc = np.full(len(grid), np.nan)
    mse = np.full(len(grid), np.nan)
    usable = np.zeros(len(grid), dtype=bool)
    eps = len(w) * np.finfo(np.float64).eps  # numpy.linalg.matrix_rank's tolerance
    for n, ridge in enumerate(grid):
        d = w + ridge * scale
        if not np.all(d > 0):
            log.info(
                "%s: ridge %g skipped: K_train + ridge is not positive definite (smallest eigenvalue %.3g, "
                "ridge adds %.3g)", source, ridge, w[0], ridge * scale,
            )
            continue
        if d[0] <= eps * d[-1]:
            log.info(
                "%s: ridge %g skipped: K_train + ridge is numerically singular (eigenvalues %.3g .. %.3g, "
                "condition number beyond 1/(m eps) = %.3g): not positive definite enough to solve",
                source, ridge, d[0], d[-1], 1 / eps,
            )
            continue
        out = kv_val @ (vy / d[:, None])
        if not np.isfinite(out).all():
            log.info("%s: ridge %g skipped: non-finite validation outputs", source, ridge)
            continue
        usable[n] = True
        acc[n] = _accuracy(out, labels_val)
        mse[n] = _mse(out, y_val)
        log.info("%s: ridge %g: val accuracy %.4f, val MSE %.5f", source, ridge, acc[n], mse[n])
    if not usable.any():
        raise RegressionError(
            f"{source}: no ridge of {grid.tolist()} gives a usable solution (smallest eigenvalue of "
            f"K_train {w[0]:.3g}, mean diagonal {scale:.3g}); add larger ridges to regression.ridge_grid"
        )
    # best validation accuracy; ties: lower validation MSE, then the smaller ridge
    order = sorted(np.flatnonzero(usable), key=lambda n: (-acc[n], mse[n], grid[n]))
    best = int(order[0])
    d = w + grid[best] * scale
    coef = v @ (vy / d[:, None])  # (m, K) = (K + reg)^-1 Y
    val_out = np.asarray(k_val, dtype=np.float64) @ coef
    test_out = np.asarray(k_test, dtype=np.float64) @ coef
    return GridFit(
        ridge_grid=grid,
        usable=usable,
        val_accuracy=acc,
        val_mse=mse,
        best=best,
        val_outputs=val_out,
        test_outputs=test_out,
        scale=scale,
        min_eigenvalue=float(w[0]),
    )


def fit_kernel_regression(
    block_files: Sequence[str | Path],
    data_path: str | Path,
    out_h5: str | Path,
    out_csv: str | Path,
    *,
    kernel: str,
    m: int,
    ridge_grid: Sequence[float],
    dataset: str,
    architecture: str,
    transform: str,
    seed: int,
    audit_csv: str | Path | None = None,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """The regression stage: assemble blocks, solve on the grid, write predictions and a metrics row.

    `transform` is the requested transform (what the row reports); the blocks may be
    those of the untransformed data where the architecture is invariant to it, in
    which case `audit_csv` is the symmetry audit of (architecture, transform, seed)
    and a refuting audit stops the job (symflow.audit.check_reuse).
    Returns the metrics row.
    """
    from symflow.audit import check_reuse
    from symflow.data import load_dataset
    from symflow.groups import parse_spec
    from symflow.h5io import CHECKSUM_ATTR, package_versions, write_h5
    from symflow.kernels import assemble
    from symflow.results import make_row, write_row

    log = log or _log
    start = time.perf_counter()
    if kernel not in ("ntk", "nngp"):
        raise ValueError(f"kernel must be ntk or nngp, got {kernel!r}")
    if audit_csv is not None:
        check_reuse(audit_csv, architecture, transform, log=log)
    gram = assemble(block_files, m, kernels=(kernel,))
    data = load_dataset(data_path)
    data_attrs = data.pop("attrs")
    if data_attrs[CHECKSUM_ATTR] != gram.provenance["data_checksum"]:
        raise ValueError(f"{data_path}: is not the data file the kernel blocks were computed from")
    if gram.provenance["architecture"] != architecture:
        raise ValueError(f"the kernel blocks are of {gram.provenance['architecture']}, not {architecture}")
    log.info(
        "%s %s on %s (kernel from %s data, seed %s), m = %d, %d blocks, backend(s) %s",
        architecture, kernel, transform, gram.provenance["transform"], gram.provenance["seed"], m,
        gram.provenance["blocks"], ",".join(gram.provenance["backends_used"]),
    )
    k = gram[kernel]
    source = f"{architecture} {kernel} {transform} m={m} ({Path(block_files[0]).parent.parent})"
    fit = fit_ridge_grid(
        k["train"], data["y_train"][:m], k["val"], data["y_val"], k["test"], ridge_grid,
        labels_val=data["labels_val"], source=source, log=log,
    )
    acc = _accuracy(fit.test_outputs, data["labels_test"])
    test_mse = _mse(fit.test_outputs, data["y_test"])
    log.info(
        "%s: chosen ridge %g (val accuracy %.4f); test accuracy %.4f, test MSE %.5f",
        source, fit.ridge, fit.val_accuracy[fit.best], acc, test_mse,
    )
    spec = parse_spec(transform)
    attrs = {
        "kind": "kernel_regression",
        "architecture": architecture,
        "kernel": kernel,
        "transform": spec.id,
        "kernel_transform": gram.provenance["transform"],
        "kernel_seed": gram.provenance["seed"],
        "seed": int(seed),
        "m": int(m),
        "dataset": dataset,
        "ridge": fit.ridge,
        "ridge_scale": fit.scale,
        "min_eigenvalue": fit.min_eigenvalue,
        "test_accuracy": acc,
        "test_mse": test_mse,
        "kernel_provenance": gram.provenance,
        "data_checksum": data_attrs[CHECKSUM_ATTR],
        "versions": package_versions(),
    }
    write_h5(
        out_h5,
        {
            "test_outputs": fit.test_outputs,
            "val_outputs": fit.val_outputs,
            "ridge_grid": fit.ridge_grid,
            "ridge_usable": fit.usable,
            "val_accuracy": fit.val_accuracy,
            "val_mse": fit.val_mse,
        },
        attrs,
    )
    row = make_row(
        stage="regression",
        dataset=dataset,
        transform=spec.id,
        group=spec.group,
        t=spec.t,
        architecture=architecture,
        inference=kernel,
        m=int(m),
        seed=int(seed),
        member=0,
        ensemble=1,
        accuracy=acc,
        mse=test_mse,
        val_accuracy=float(fit.val_accuracy[fit.best]),
        selection="val",
        failed=False,
        ridge=fit.ridge,
        wall_time_s=round(time.perf_counter() - start, 3),
        path=str(out_h5),
    )
    write_row(out_csv, row)
    return row
