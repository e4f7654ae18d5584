"""Numerical faults: a Gram matrix that is not positive definite enough for the solver gets a
clear message and the ridge grid works around it; a non-finite one is refused by name.

Already elsewhere (not repeated here): a diverging training run (huge learning rate) is
recorded as failed with its reason (tests/test_train_loop.py::test_a_diverging_run_is_failed_with_its_reason),
and through the workflow the rest completes while a recipe diverges
(tests/test_sgd_workflow.py::test_sgd_rules_end_to_end_on_the_tiny_config); a kernel with a
negative eigenvalue skips ridge 0 (tests/test_regression.py::test_ridge_choice_and_unsupported_ridges)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from kernel_helpers import write_data_file

from symflow.architectures import ModelHP
from symflow.h5io import read_h5, write_h5
from symflow.kernels import blocks_for, compute_block
from symflow.regression import RegressionError, fit_kernel_regression, fit_ridge_grid

HP = ModelHP(depth=2)


def _toy(seed=0, m=8):
    rng = np.random.default_rng(seed)
    y = np.eye(10)[rng.integers(0, 10, m)]
    return y, rng.standard_normal((3, m)), np.eye(10)[[0, 1, 2]], rng.standard_normal((2, m))


def test_a_numerically_singular_kernel_skips_ridge_zero(caplog):
    """Rank 2 of 8 (e.g. duplicated images): the smallest eigenvalues are rounding noise of
    either sign; ridge 0 is skipped with its reason, a positive ridge is chosen."""
    caplog.set_level(logging.INFO)
    y, kv, yv, kt = _toy()
    f = np.random.default_rng(1).standard_normal((8, 2))
    k = f @ f.T
    fit = fit_ridge_grid(k, y, kv, yv, kt, [0.0, 1e-3, 1e-1], source="toy singular")
    assert not fit.usable[0] and fit.usable[1:].all() and fit.ridge > 0
    assert np.isfinite(fit.test_outputs).all()
    assert "toy singular: ridge 0 skipped: K_train + ridge is" in caplog.text
    assert "numerically singular" in caplog.text or "not positive definite" in caplog.text
    # a kernel that is positive definite but beyond float64's reach (condition ~1e17): also skipped
    w = np.geomspace(1e-17, 1.0, 8)
    q = np.linalg.qr(np.random.default_rng(2).standard_normal((8, 8)))[0]
    caplog.clear()
    fit = fit_ridge_grid((q * w) @ q.T, y, kv, yv, kt, [0.0, 1e-6], source="toy")
    assert not fit.usable[0] and fit.ridge == 1e-6
    with pytest.raises(RegressionError, match=r"toy: no ridge of \[0.0\].*add larger ridges"):
        fit_ridge_grid(k, y, kv, yv, kt, [0.0], source="toy")


def test_a_non_finite_kernel_is_refused_by_name():
    y, kv, yv, kt = _toy()
    k = np.eye(8)
    k[3, 4] = k[4, 3] = np.nan
    with pytest.raises(RegressionError, match="FCN ntk m=8: the training kernel has non-finite entries"):
        fit_ridge_grid(k, y, kv, yv, kt, [0.0, 1.0], source="FCN ntk m=8")


def test_the_regression_stage_on_duplicated_training_images(tmp_path, caplog):
    """Blocks of a data file whose training set repeats an image: the stage fits with a
    positive ridge when the grid has one, and fails with the kernel's name when it has not."""
    caplog.set_level(logging.INFO)
    data = write_data_file(tmp_path / "d0.h5", n_train=4, n_val=3, n_test=5, res=4)
    arrays, attrs = read_h5(data)
    arrays["x_train"][1] = arrays["x_train"][0]  # a duplicate: K_train is singular
    write_h5(tmp_path / "data.h5", arrays, {k: v for k, v in attrs.items() if k != "content_sha256"})
    files = []
    for split, i, j in blocks_for(4, 2, 3, 5):
        path = tmp_path / "blocks" / split / f"{i}-{j}.h5"
        compute_block(tmp_path / "data.h5", path, arch="FCN", hp=HP, split=split, i=i, j=j, block_size=2,
                      dtype="float64", batch_rows=2)  # fmt: skip
        files.append(path)
    kw = dict(kernel="ntk", m=4, dataset="toy", architecture="FCN", transform="identity", seed=0)
    row = fit_kernel_regression(files, tmp_path / "data.h5", tmp_path / "a.h5", tmp_path / "a.csv",
                                ridge_grid=[0.0, 1e-4, 1e-2], **kw)  # fmt: skip
    assert float(row["ridge"]) > 0 and "ridge 0 skipped" in caplog.text
    out, _ = read_h5(tmp_path / "a.h5")
    assert out["ridge_usable"].tolist() == [False, True, True] and np.isfinite(out["test_outputs"]).all()
    with pytest.raises(RegressionError, match=r"FCN ntk identity m=4 .*no ridge of \[0.0\].*regression.ridge_grid"):
        fit_kernel_regression(
            files, tmp_path / "data.h5", tmp_path / "b.h5", tmp_path / "b.csv", ridge_grid=[0.0], **kw
        )
    assert not (tmp_path / "b.h5").exists() and not (tmp_path / "b.csv").exists()
