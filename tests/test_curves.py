import numpy as np
import pytest

from symflow.curves import fit_ends, fit_power_law


def test_exact_power_law_is_recovered():
    m = np.array([320, 640, 1280, 2560, 5120, 10240, 20480, 45000])
    y = 3.0 * m**-0.37
    fit = fit_power_law(m, y)
    assert fit.slope == pytest.approx(-0.37, abs=1e-12)
    assert fit(m) == pytest.approx(y, rel=1e-10)


def test_ends_see_a_cusp():
    m = 2.0 ** np.arange(4, 16)
    knee = 2.0**10
    y = np.where(m < knee, 0.8 * m**-0.1, 0.8 * knee**-0.1 * (m / knee) ** -0.5)
    first, last = fit_ends(m, y, 6)
    assert first.slope == pytest.approx(-0.1, abs=1e-12)
    assert last.slope == pytest.approx(-0.5, abs=1e-12)


def test_fit_needs_two_positive_points():
    with pytest.raises(ValueError):
        fit_power_law([1, 2], [0.0, 1.0])
