"""Slopes of the ImageNet learning curves, as Sec. 6.2 fits them.

"For each configuration, we interpolate the first/last six points (i.e., i >= 6 / i < 6) with
straight lines (in the log-log plot) and compute the slope alpha." With m_i = 2^(-i/2) m, the
points i >= 6 are the six smallest subsets (the first phase, before the cusp near m_6) and
i < 6 the six largest (the second phase). alpha is the decay exponent: y ~ m^(-alpha).

The paper does not say whether y is the error or the loss; symflow fits both (:data:`QUANTITIES`)
on the mean over the successful runs at each m, with symflow.curves.fit_power_law.
"""

from __future__ import annotations

import numpy as np

from symflow.curves import PowerLaw, fit_power_law

SPLIT = 6  # i >= SPLIT: first phase; i < SPLIT: second phase
QUANTITIES = ("error", "loss")
PHASES = ("first", "second", "all")  # i >= SPLIT, i < SPLIT, every point (one power law)
SLOPE_COLUMNS = ("model", "transform", "quantity", "phase", "alpha", "alpha_se", "points", "m_min", "m_max", "runs",
                 "failed")  # alpha_se: the fit's standard error (symflow.curves.PowerLaw.se)


def first_phase(subset, m, split: int = SPLIT) -> np.ndarray:
    """True for the points of the first phase: i >= split, where every point has its subset index i;
    else (m not all of the form m_i) the `split` smallest m."""
    subset, m = np.asarray(subset, dtype=float), np.asarray(m, dtype=float)
    if np.isnan(subset).any():
        return np.argsort(np.argsort(m)) < split
    return subset >= split


def phase_fits(subset, m, y, split: int = SPLIT, whole: bool = False) -> dict[str, PowerLaw | None]:
    """{'first': fit on i >= split, 'second': fit on i < split} (None where < 2 usable points),
    and with `whole` 'all': one fit on every point."""
    m, y = np.asarray(m, dtype=float), np.asarray(y, dtype=float)
    first = first_phase(subset, m, split)
    out: dict[str, PowerLaw | None] = {}
    phases = [("first", first), ("second", ~first)] + ([("all", np.ones_like(first))] if whole else [])
    for phase, sel in phases:
        ok = sel & np.isfinite(y) & (y > 0)
        out[phase] = fit_power_law(m[ok], y[ok]) if ok.sum() >= 2 else None
    return out


def curve_means(points, by=("model", "transform"), quantities=QUANTITIES):
    """Mean of each quantity over the successful runs at each (by..., subset, m), with runs and ok counts."""
    by = list(by)
    keys = by + ["subset", "m"]
    frame = points.assign(subset=points["subset"].fillna(-1))
    ok = frame[~frame["failed"].astype(bool)]
    means = ok.groupby(keys, dropna=False)[list(quantities)].mean().reset_index()
    counts = frame.groupby(keys, dropna=False).agg(runs=("m", "size"), ok=("failed", lambda f: int((~f).sum())))
    out = counts.reset_index().merge(means, on=keys, how="left")
    out["subset"] = out["subset"].where(out["subset"] >= 0)
    return out.sort_values(keys[:-2] + ["m"], kind="stable").reset_index(drop=True)


def slope_table(points, by=("model", "transform"), quantities=QUANTITIES, split: int = SPLIT):
    """alpha of each (model, transform, quantity, phase): a tidy table (SLOPE_COLUMNS). Phases:
    first (i >= split), second (i < split), all (every point); `points` counts the sizes fitted,
    `runs` and `failed` the runs of the phase's sizes and how many of them failed."""
    import pandas as pd

    means = curve_means(points, by, quantities)
    rows = []
    for key, g in means.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        first = first_phase(g["subset"], g["m"], split)
        parts = {"first": g[first], "second": g[~first], "all": g}
        for q in quantities:
            fits = phase_fits(g["subset"], g["m"], g[q], split, whole=True)
            for phase, fit in fits.items():
                part = parts[phase]
                rows.append({**dict(zip(by, key)), "quantity": q, "phase": phase,
                             "alpha": np.nan if fit is None else -fit.slope,
                             "alpha_se": np.nan if fit is None else fit.se, "points": 0 if fit is None else fit.points,
                             "m_min": part["m"].min() if len(part) else np.nan,
                             "m_max": part["m"].max() if len(part) else np.nan,
                             "runs": int(part["runs"].sum()), "failed": int((part["runs"] - part["ok"]).sum())})
    return pd.DataFrame(rows, columns=list(by) + list(SLOPE_COLUMNS[2:]))


def write_slope_table(points_csv, out_csv, split: int = SPLIT) -> int:
    """The slope table of a gathered point table (symflow.imagenet.results), written to out_csv;
    returns its row count."""
    from symflow.h5io import atomic_path
    from symflow.imagenet.results import load_points
    from symflow.provenance import stamp

    table = stamp(slope_table(load_points(points_csv), split=split))  # the symflow that fitted them
    with atomic_path(out_csv, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    return len(table)
