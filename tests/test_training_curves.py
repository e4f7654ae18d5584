"""Training curves as data (results/tables/curves.csv, gather_curves) and as a picture per figure
(plot_training_curves), and the job model's wiring of both."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from symflow.figures import training_curves as TC
from symflow.figures.table import curve_table_columns, gather_curves, load_curves
from symflow.provenance import PROVENANCE_COLUMNS
from symflow.results import make_row, write_row
from symflow.train.loop import CURVE_COLUMNS

DATASET = "cifar10-sample.0e454ec3-r8-n200.40.80-split0"


def _run(root: Path, arch, transform, recipe, *, width=8, m=40, seed=0, failed=False, init="gaussian", evals=4):
    """A run's folder as train_sgd leaves it: metrics.csv (one RUN_COLUMNS row) and curve.csv."""
    d = root / f"{arch}-w{width}-{init}" / transform / recipe / f"m{m}" / f"s{seed}" / "i0"
    d.mkdir(parents=True)
    group, _, t = transform.partition("-t")
    write_row(d / "metrics.csv", make_row(
        stage="sgd", dataset=DATASET, transform=transform, group=group, t=float(t) if t else None, architecture=arch,
        width=width, init=init, inference=recipe, m=m, seed=seed, member=0, ensemble=1, accuracy=0.2,
        failed=failed, failure="budget" if failed else "", reason="below 95%" if failed else "",
        path=str(d / "predictions.h5"), symflow_version="0.1.0", symflow_commit="ab" * 20))
    with open(d / "curve.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CURVE_COLUMNS)
        for k in range(evals):
            train = min(1.0, 0.1 + 0.3 * k) if not failed else 0.1 + 0.05 * k
            w.writerow([20 * k, 10.0 * k, "" if k == 0 else 0.05, train, 0.1, 0.12 + 0.01 * k, 0.1,
                        0.11 + 0.01 * k, 0.1, 0.5 * k])
    return d


def test_gather_curves_one_row_per_run_and_evaluation(tmp_path):
    a = _run(tmp_path, "VEC", "identity", "nn")
    b = _run(tmp_path, "VEC", "o3_pixel", "nn", failed=True, evals=3)
    c = _run(tmp_path, "VEC", "o3_pixel", "nn_plus", width=16)
    figures = {"fig2": [a / "curve.csv", b / "curve.csv"], "figS5": [a / "curve.csv"], "fig3": [c / "curve.csv"]}
    metrics = [d / "metrics.csv" for d in (a, b, c)]
    assert gather_curves(figures, metrics, tmp_path / "curves.csv") == 4 + 3 + 4
    table = load_curves(tmp_path / "curves.csv")
    assert tuple(table.columns) == curve_table_columns()
    assert tuple(table.columns[-2:]) == PROVENANCE_COLUMNS and set(table["symflow_commit"]) == {"ab" * 20}
    by_run = table.groupby("path")
    assert by_run.size().to_dict() == {str(a / "predictions.h5"): 4, str(b / "predictions.h5"): 3,
                                       str(c / "predictions.h5"): 4}
    first = table[table["path"] == str(a / "predictions.h5")]
    assert set(first["figures"]) == {"fig2 figS5"} and first["step"].tolist() == [0, 20, 40, 60]
    assert first["train_loss"].isna().tolist() == [True, False, False, False]  # no loss before the first step
    failed = table[table["path"] == str(b / "predictions.h5")]
    assert failed["failed"].all() and set(failed["failure"]) == {"budget"}
    assert set(table[table["path"] == str(c / "predictions.h5")]["width"]) == {16}
    # a curve whose metrics.csv is not among the inputs is refused, in one line
    with pytest.raises(ValueError, match="no metrics.csv beside it"):
        gather_curves({"fig2": [a / "curve.csv"]}, [b / "metrics.csv"], tmp_path / "bad.csv")


def _captured(monkeypatch):
    figs = []
    monkeypatch.setattr(TC, "save", lambda fig, pdf, png: figs.append(fig))
    return figs


def test_training_curves_figure_has_a_panel_per_configuration_and_counts(tmp_path, monkeypatch):
    runs = [_run(tmp_path, "VEC", "identity", "nn"), _run(tmp_path, "VEC", "o3_pixel", "nn", failed=True),
            _run(tmp_path, "VEC", "o3_pixel", "nn", seed=1), _run(tmp_path, "FCN", "identity", "nn", width=32)]
    gather_curves({"fig2": [d / "curve.csv" for d in runs]}, [d / "metrics.csv" for d in runs],
                  tmp_path / "curves.csv")
    figs = _captured(monkeypatch)
    TC.plot_training_curves(tmp_path / "curves.csv", "fig2", tmp_path / "f.pdf", tmp_path / "f.png")
    (fig,) = figs
    axes = fig.axes
    assert len(axes) == 2 * 3  # FCN_32 NN and VEC_8 NN, each train / validation / test
    assert [ax.get_title() for ax in axes[:3]] == ["train accuracy", "validation accuracy", "test accuracy"]
    assert axes[0].get_ylabel().startswith("FCN$_{32}$, NN") and axes[3].get_ylabel().startswith("VEC$_{8}$, NN")
    counts = [[t.get_text() for t in ax.texts] for ax in axes]
    assert counts[:3] == [["1 run"]] * 3 and counts[3:] == [["3 runs, 1 failed"]] * 3
    assert len([ln for ln in axes[3].lines if ln.get_marker() == "x"]) == 1  # the failed run ends in an x
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [text.split(" (")[1] for text in legend[:2]] == ["2 runs)", "2 runs, 1 failed)"]
    assert "4 runs, 1 failed" in fig._suptitle.get_text()
    # the real file, and a figure none of whose runs exist
    monkeypatch.undo()
    TC.plot_training_curves(tmp_path / "curves.csv", "fig2", tmp_path / "f.pdf", tmp_path / "f.png")
    TC.plot_training_curves(tmp_path / "curves.csv", "fig4", tmp_path / "g.pdf", tmp_path / "g.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def _chance(fig) -> tuple[set, str]:
    dashed = {ln.get_ydata()[0] for ax in fig.axes for ln in ax.lines if ln.get_linestyle() == "--"}
    (label,) = [t.get_text() for t in fig.legends[0].get_texts() if t.get_text().startswith("chance")]
    return dashed, label


def test_the_chance_line_is_one_over_the_datas_class_count(tmp_path, monkeypatch):
    import numpy as np

    from symflow.h5io import write_h5

    runs = [_run(tmp_path, "VEC", "identity", "nn")]
    gather_curves({"fig2": [d / "curve.csv" for d in runs]}, [d / "metrics.csv" for d in runs],
                  tmp_path / "curves.csv")
    four = tmp_path / "four.h5"  # a data-stage file of a 4-class source (its y_* one-hot over 4)
    write_h5(four, {"y_train": np.eye(4, dtype=np.float32)}, {"num_classes": 4})
    cifar = tmp_path / "cifar.h5"  # CIFAR-10's files have no num_classes: 10
    write_h5(cifar, {"y_train": np.eye(10, dtype=np.float32)}, {})
    figs = _captured(monkeypatch)
    TC.plot_training_curves(tmp_path / "curves.csv", "fig2", "f.pdf", "f.png", data=[four])
    TC.plot_training_curves(tmp_path / "curves.csv", "fig2", "f.pdf", "f.png", data=[cifar])
    TC.plot_training_curves(tmp_path / "curves.csv", "fig2", "f.pdf", "f.png")
    assert [_chance(f) for f in figs] == [({0.25}, "chance (1 of 4 classes)"), ({0.1}, "chance (1 of 10 classes)"),
                                          ({0.1}, "chance (1 of 10 classes)")]
    with pytest.raises(ValueError, match=r"\[4, 10\] classes"):
        TC.plot_training_curves(tmp_path / "curves.csv", "fig2", "f.pdf", "f.png", data=[four, cifar])


def test_every_figure_has_a_layout_and_a_caption():
    from symflow.jobs import CURVE_FIGURES

    assert set(TC.LAYOUT) == set(TC.TITLES) == set(CURVE_FIGURES)
    caption = (Path(__file__).resolve().parent.parent / "workflow" / "report" / "curves.rst").read_text()
    assert all(f'"{f}"' in caption for f in CURVE_FIGURES)


def test_jobs_gather_every_training_run_with_its_figures():
    """Curves reads every train_sgd run of the default target, each listed under the figures that
    show it (Fig. S1: its ensembles' members and GAP_n's); a curves figure per figure with networks."""
    import yaml

    from conftest import CONFIG, TINY
    from symflow import jobs as J
    from symflow.configuration import merge_config, validate

    config = validate(merge_config(yaml.safe_load(CONFIG.read_text()), yaml.safe_load(TINY.read_text())))
    model = J.Jobs(config)
    inputs = model.inputs(J.Curves())
    runs = model.walk(packed=False)["train_sgd"]
    assert {r.job for r in inputs["metrics"]} == runs
    assert {r.job for f in J.CURVE_FIGURES for r in inputs[f]} == runs
    assert all(r.name == "curve" for f in J.CURVE_FIGURES for r in inputs[f])
    figs1 = sorted((r.job.arch, r.job.transform) for r in inputs["figS1"])
    # tiny.yaml's Fig. S1: VEC_4 at t = 0 and 1 and GAP_4 at t = 0, ensembles of 2
    assert figs1 == [("GAP", "so3_path-t0.0")] * 2 + [("VEC", "so3_path-t0.0")] * 2 + [("VEC", "so3_path-t1.0")] * 2
    fig2 = {r.job for r in inputs["fig2"]}
    assert fig2 == {r.job for r in model.figure_rows("fig2") if isinstance(r.job, J.Run)}
    for f in J.CURVE_FIGURES:  # a curves figure reads a data file of each dataset its runs read (K: chance)
        data = model.inputs(J.CurvesFigure(f))["data"]
        assert sorted(r.job.dataset for r in data) == sorted({r.dataset for r in model.figure_runs(f)})
        assert {r.job for r in data} <= {r.inputs(model)["data"].job for r in model.figure_runs(f)}
    targets = {r.path for r in model.targets()}
    assert {f"results/{f}_curves.png" for f in J.CURVE_FIGURES} <= targets
    assert {"results/tables/curves.csv", "results/report/summary.rst"} <= targets
