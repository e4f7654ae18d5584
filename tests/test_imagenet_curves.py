"""Learning-curve slopes on the paper's two phases (i >= 6 / i < 6), on synthetic power laws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from symflow.imagenet.curves import phase_fits, slope_table
from symflow.imagenet.data import subset_sizes


def bent_curve(a1, a2, m):
    """c m^-a1 up to m_6, then m^-a2, continuous at m_6 (a cusp at i = 6)."""
    m6 = m[6]
    return np.where(m <= m6, 0.9 * (m / m6) ** -a1, 0.9 * (m / m6) ** -a2)


def points(rows):
    cols = ["model", "transform", "subset", "m", "error", "loss", "failed"]
    return pd.DataFrame(rows, columns=cols)


def test_phase_fits_recover_both_exponents():
    m = np.asarray(subset_sizes(), float)
    fits = phase_fits(np.arange(12), m, bent_curve(0.15, 0.49, m))
    assert -fits["first"].slope == pytest.approx(0.15, abs=2e-3)
    assert -fits["second"].slope == pytest.approx(0.49, abs=2e-3)
    assert fits["first"].points == fits["second"].points == 6


def test_slope_table_fits_error_and_loss_on_means_of_successful_runs():
    m = np.asarray(subset_sizes(), float)
    rows = []
    for noise in (1.02, 1 / 1.02):  # two seeds; their mean is the curve times a constant, same slopes
        for i in range(12):
            err, loss = bent_curve(0.1, 0.41, m)[i], bent_curve(0.3, 0.38, m)[i]
            rows.append(("ResNet101", "o3_pixel", i, m[i], err * noise, loss * noise, False))
    rows.append(("ResNet101", "o3_pixel", 3, m[3], 50.0, 50.0, True))  # a failed run counts for nothing
    table = slope_table(points(rows))
    got = table.set_index(["quantity", "phase"])["alpha"]
    assert got[("error", "first")] == pytest.approx(0.1, abs=1e-3)
    assert got[("error", "second")] == pytest.approx(0.41, abs=1e-3)
    assert got[("loss", "second")] == pytest.approx(0.38, abs=1e-3)
    second = table[(table["phase"] == "second") & (table["quantity"] == "loss")].iloc[0]
    assert second["m_max"] == 1_281_167 and second["points"] == 6


def test_without_subset_indices_the_points_split_by_rank():
    m = np.array([10.0, 20, 40, 80, 160, 320, 640, 1280])
    y = np.where(m <= 320, m**-0.2, 320**-0.2 * (m / 320) ** -0.6)
    fits = phase_fits([np.nan] * 8, m, y)
    assert -fits["first"].slope == pytest.approx(0.2) and fits["first"].points == 6
    assert fits["second"].points == 2 and -fits["second"].slope == pytest.approx(0.6)
