"""Ensembles and S-Dist (App. E, S15/S16) on hand-made outputs."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from symflow.ensemble import SDIST_COLUMNS, average_outputs, run_average_ensemble, run_s_dist, s_dist
from symflow.h5io import read_h5, write_h5
from symflow.results import read_rows, write_row


def test_s_dist_is_the_mean_squared_norm_over_outputs():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[0.0, 0.0], [0.0, 0.0]])
    assert s_dist(a, b) == pytest.approx((1 + 4) / 2)
    assert s_dist(a, a) == 0.0
    with pytest.raises(ValueError):
        s_dist(a, b[:1])
    np.testing.assert_allclose(average_outputs([a, b]), a / 2)


def _member(tmp_path, i, outputs, failed=False, labels=None):
    d = tmp_path / f"i{i}"
    labels = np.arange(outputs.shape[0]) % 10 if labels is None else labels
    attrs = dict(
        dataset="ds",
        transform="so3_path-t0.5",
        architecture="VEC",
        hp="L8",
        width=16,
        init="gaussian",
        recipe="nn_plus",
        m=40,
        seed=0,
        member=i,
    )
    write_h5(
        d / "predictions.h5",
        {"test_outputs": outputs, "val_outputs": outputs[:3], "labels_test": labels, "labels_val": labels[:3]},
        attrs,
    )
    write_row(
        d / "metrics.csv",
        dict(
            stage="sgd",
            dataset="ds",
            transform="so3_path-t0.5",
            group="so3_path",
            t=0.5,
            architecture="VEC",
            width=16,
            init="gaussian",
            inference="nn_plus",
            m=40,
            seed=0,
            member=i,
            ensemble=1,
            accuracy=0.1,
            train_accuracy=1.0 if not failed else 0.3,
            failed=failed,
            reason="x" if failed else "",
            steps=100,
            eta0=0.5,
            lr=4.0,
            wall_time_s=1.0,
            path=str(d / "predictions.h5"),
        ),
    )
    return d / "predictions.h5", d / "metrics.csv"


def test_average_ensemble_leaves_failed_members_out(tmp_path):
    rng = np.random.default_rng(0)
    outs = [rng.standard_normal((8, 10)).astype(np.float32) for _ in range(3)]
    files = [_member(tmp_path, i, o, failed=(i == 2)) for i, o in enumerate(outs)]
    row = run_average_ensemble(
        [f[0] for f in files],
        [f[1] for f in files],
        mean_path=tmp_path / "k3" / "mean.h5",
        metrics_path=tmp_path / "k3" / "metrics.csv",
    )
    arrays, attrs = read_h5(tmp_path / "k3" / "mean.h5")
    np.testing.assert_allclose(arrays["test_outputs"], (outs[0] + outs[1]) / 2, rtol=1e-6)
    assert list(attrs["members_used"]) == [0, 1] and list(attrs["failed_members"]) == [2]
    (written,) = read_rows([tmp_path / "k3" / "metrics.csv"])
    assert written["stage"] == "ensemble" and written["ensemble"] == "3" and written["failed"] == "False"
    assert row["accuracy"] == pytest.approx(np.mean(np.argmax((outs[0] + outs[1]) / 2, -1) == np.arange(8) % 10))


def test_s_dist_against_references(tmp_path):
    ens = np.ones((6, 10), np.float32)
    _member(tmp_path, 0, ens)
    files = [_member(tmp_path, 0, ens)]
    run_average_ensemble([files[0][0]], [files[0][1]], mean_path=tmp_path / "mean.h5", metrics_path=tmp_path / "m.csv")
    write_h5(tmp_path / "ntk.h5", {"test_outputs": np.zeros((6, 10))}, {})  # a regression output: no labels
    write_h5(tmp_path / "gap.h5", {"test_outputs": np.full((6, 10), 0.5), "labels_test": np.arange(6) % 10}, {})
    rows = run_s_dist(
        tmp_path / "mean.h5",
        {"VEC_inf": (tmp_path / "ntk.h5", "so3_path-t0.5"), "GAP_16": (tmp_path / "gap.h5", "so3_path-t0.0")},
        out_path=tmp_path / "s.csv",
    )
    assert [r["reference"] for r in rows] == ["VEC_inf", "GAP_16"]
    assert float(rows[0]["sdist"]) == pytest.approx(10.0) and float(rows[1]["sdist"]) == pytest.approx(2.5)
    with open(tmp_path / "s.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == SDIST_COLUMNS and len(list(reader)) == 2
    assert rows[0]["t"] == "0.5" and rows[0]["group"] == "so3_path" and rows[0]["width"] == 16
    write_h5(tmp_path / "other.h5", {"test_outputs": np.zeros((6, 10)), "labels_test": np.arange(6)[::-1] % 10}, {})
    with pytest.raises(ValueError, match="test labels"):
        run_s_dist(tmp_path / "mean.h5", {"x": (tmp_path / "other.h5", "t")}, out_path=tmp_path / "bad.csv")


def test_sdist_table_feeds_figS1(tmp_path):
    from symflow.ensemble import sdist_table
    from symflow.figures.figS1 import plot_figS1

    files = []
    for t in ("0.0", "1.0"):
        d = tmp_path / t
        d.mkdir()
        mean = np.full((6, 10), float(t), np.float32)
        labels = np.arange(6) % 10
        write_h5(d / "mean.h5", {"test_outputs": mean, "labels_test": labels},
                 dict(transform=f"so3_path-t{t}", architecture="VEC", width=16, recipe="nn_plus", m=40, seed=0,
                      members=[0, 1], members_used=[0, 1], dataset="ds"))
        write_h5(d / "inf.h5", {"test_outputs": np.zeros((6, 10))}, {})
        write_h5(d / "gap.h5", {"test_outputs": np.full((6, 10), 0.5), "labels_test": labels}, {})
        run_s_dist(d / "mean.h5", {"VEC_inf": (d / "inf.h5", f"so3_path-t{t}"),
                                   "GAP_16": (d / "gap.h5", "so3_path-t0.0")}, out_path=d / "sdist.csv")
        files.append(d / "sdist.csv")
    assert sdist_table(files, tmp_path / "figS1.csv") == 2
    table = pd.read_csv(tmp_path / "figS1.csv")
    assert table["t"].tolist() == [0.0, 1.0] and table["ensemble"].tolist() == [2, 2]
    assert table["sdist_vec_inf"].tolist() == pytest.approx([0.0, 10.0])  # |1|^2 x 10 outputs at t = 1
    assert table["sdist_gap"].tolist() == pytest.approx([2.5, 2.5])
    plot_figS1(tmp_path / "figS1.csv", tmp_path / "f.pdf", tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000
    (tmp_path / "0.0" / "sdist.csv").write_text(",".join(SDIST_COLUMNS) + "\n")  # an ensemble without rows
    with pytest.raises(ValueError, match="no S-Dist rows"):
        sdist_table([tmp_path / "0.0" / "sdist.csv"], tmp_path / "bad.csv")
