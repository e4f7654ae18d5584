"""Kernel regression: equal to neural-tangents' predict at t = None; ridge choice; the stage."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from symflow._nt import nt
from symflow.architectures import ARCHITECTURES, ModelHP
from symflow.h5io import read_h5
from symflow.kernels import blocks_for, compute_block, precision
from symflow.regression import RegressionError, fit_kernel_regression, fit_ridge_grid
from symflow.results import RUN_COLUMNS

HP = ModelHP(depth=2)


@pytest.mark.parametrize("get", ["ntk", "nngp"])
@pytest.mark.parametrize("ridge", [0.0, 1e-2])
def test_equals_nt_predict_at_infinite_time(get, ridge):
    rng = np.random.default_rng(1)
    x_train, x_val, x_test = (rng.standard_normal((n, 4, 4, 3)) for n in (10, 3, 4))
    y_train = np.eye(10)[rng.integers(0, 10, 10)]
    y_val = np.eye(10)[rng.integers(0, 10, 3)]
    kernel_fn = ARCHITECTURES.get("VEC").stax(HP)[2]
    with precision("float64"):
        x = np.concatenate([x_train, x_val, x_test])
        k = np.asarray(getattr(kernel_fn(x, None, ("nngp", "ntk")), get))
        predict = nt.predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, diag_reg=ridge)
        want = np.asarray(predict(None, x_test, get=get, compute_cov=False))
    fit = fit_ridge_grid(k[:10, :10], y_train, k[10:13, :10], y_val, k[13:, :10], [ridge])
    assert fit.ridge == ridge
    np.testing.assert_allclose(fit.test_outputs, want, rtol=1e-6, atol=1e-9)


def test_ridge_choice_and_unsupported_ridges(caplog):
    caplog.set_level("INFO")
    rng = np.random.default_rng(2)
    f = rng.standard_normal((6, 2))
    k = f @ f.T - 1e-3 * np.eye(6)  # not positive definite: ridge 0 cannot be used
    y = np.eye(10)[rng.integers(0, 10, 6)]
    kv, kt = rng.standard_normal((3, 6)), rng.standard_normal((2, 6))
    yv = np.eye(10)[[0, 1, 2]]
    fit = fit_ridge_grid(k, y, kv, yv, kt, [0.0, 0.1, 1.0], source="toy")
    assert not fit.usable[0] and fit.usable[1:].all() and np.isnan(fit.val_accuracy[0])
    assert "ridge 0 skipped" in caplog.text
    best = max(range(1, 3), key=lambda n: (fit.val_accuracy[n], -fit.val_mse[n]))
    assert fit.best == best
    with pytest.raises(RegressionError, match=r"toy: no ridge .*smallest eigenvalue of K_train -0.001"):
        fit_ridge_grid(k, y, kv, yv, kt, [0.0], source="toy")


def test_regression_stage_writes_predictions_and_a_row(tmp_path):
    from kernel_helpers import write_data_file

    data = write_data_file(tmp_path / "data.h5", n_train=6, n_val=3, n_test=5, res=4)
    files = []
    for split, i, j in blocks_for(4, 2, 3, 5):
        path = tmp_path / "blocks" / split / f"{i}-{j}.h5"
        compute_block(data, path, arch="FCN", hp=HP, split=split, i=i, j=j, block_size=2, dtype="float64",
                      batch_rows=2)
        files.append(path)
    row = fit_kernel_regression(files, data, tmp_path / "ntk.h5", tmp_path / "ntk.csv", kernel="ntk", m=4,
                                ridge_grid=[0.0, 1e-3, 1e-1], dataset="toy", architecture="FCN",
                                transform="identity", seed=0)
    arrays, attrs = read_h5(tmp_path / "ntk.h5")
    assert arrays["test_outputs"].shape == (5, 10) and arrays["val_outputs"].shape == (3, 10)
    assert arrays["ridge_grid"].tolist() == [0.0, 1e-3, 1e-1] and arrays["val_accuracy"].shape == (3,)
    labels = read_h5(data)[0]["labels_test"]
    acc = float(np.mean(arrays["test_outputs"].argmax(1) == labels))
    with open(tmp_path / "ntk.csv") as fh:
        (stored,) = list(csv.DictReader(fh))
    assert tuple(stored) == RUN_COLUMNS
    assert stored["stage"] == "regression" and stored["inference"] == "ntk" and stored["m"] == "4"
    assert float(stored["accuracy"]) == pytest.approx(acc) and float(stored["ridge"]) == attrs["ridge"]
    assert row["architecture"] == "FCN" and stored["transform"] == "identity"
