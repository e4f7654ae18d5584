"""Power-law fits of learning curves: y ~ c m^s, fitted in log-log space.

The paper (Sec. 6.2) fits the first and the last six points of each curve with a
straight line in the log-log plot and reports the slopes; a slope that grows from
the first segment to the last is "data improves data efficiency" (DIDE).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PowerLaw:
    slope: float  # s in y ~ c m^s (negative for a decaying error)
    intercept: float  # log c
    points: int
    se: float = float("nan")  # the least-squares standard error of the slope (the points' scatter
    # about the line, points - 2 degrees of freedom); nan with two points

    def __call__(self, m):
        return np.exp(self.intercept) * np.asarray(m, dtype=float) ** self.slope


def fit_power_law(m, y) -> PowerLaw:
    """Least-squares line through (log m, log y); needs >= 2 points with y > 0."""
    m = np.asarray(m, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(y) & (y > 0) & (m > 0)
    if keep.sum() < 2:
        raise ValueError(f"a power-law fit needs 2 positive points, got {int(keep.sum())}")
    x, ly = np.log(m[keep]), np.log(y[keep])
    slope, intercept = np.polyfit(x, ly, 1)
    k = int(keep.sum())
    se = float("nan")
    if k > 2:
        resid = ly - (slope * x + intercept)
        se = float(np.sqrt((resid**2).sum() / (k - 2) / ((x - x.mean()) ** 2).sum()))
    return PowerLaw(float(slope), float(intercept), k, se)


def fit_ends(m, y, points: int) -> tuple[PowerLaw, PowerLaw]:
    """Fits on the first and on the last `points` points (by m); they overlap on short curves."""
    order = np.argsort(np.asarray(m, dtype=float))
    m = np.asarray(m, dtype=float)[order]
    y = np.asarray(y, dtype=float)[order]
    k = max(2, min(int(points), len(m)))
    return fit_power_law(m[:k], y[:k]), fit_power_law(m[-k:], y[-k:])
