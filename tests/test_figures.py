"""Figures from synthetic tables (no training needed), and the gathered table's schema."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from symflow.figures.style import group_label
from symflow.figures.table import gather, load_runs
from symflow.results import RUN_COLUMNS, make_row, write_rows

DATASET = "cifar10-sample.0e454ec3-r8-n3500.500.1000-split0"
ARCHS = ["FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8"]
GROUPS = ["identity", "o3_shared", "o3_pixel", "perm", "o3d"]
WIDTHS = {"FCN": 256, "LCN": 8, "VEC": 32, "GAP": 32, "LAP4": 32, "LAP8": 32}
COLLAPSED_FIG2 = ("GAP", "perm", "nn_plus")  # every run of this point collapsed


def row(**kw):
    base = dict(dataset=DATASET, group=kw.get("transform", "identity").split("-t")[0], init="gaussian",
                member=0, ensemble=1, failed=False, reason="", path=f"run/{len(kw)}")
    base.update(kw)
    if base["stage"] == "regression":
        base["init"] = ""
    return make_row(**base)


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    rows = []
    spurious = dict(zip(GROUPS, [0.0, 0.0, 0.1, 0.2, 0.25]))
    for i, (arch, g, seed) in enumerate(itertools.product(ARCHS, GROUPS, [0, 1])):
        for inf in ("ntk", "nngp"):
            rows.append(row(stage="regression", architecture=arch, transform=g, inference=inf, m=250, seed=seed,
                            accuracy=0.5 - spurious[g], mse=0.08, path=f"r/{arch}/{g}/{seed}/{inf}"))
        for inf in ("nn", "nn_plus"):
            failed = bool(arch == "LCN" and g == "o3d" and seed == 1) or (arch, g, inf) == COLLAPSED_FIG2
            kind = "collapsed" if (arch, g, inf) == COLLAPSED_FIG2 else "budget"
            rows.append(row(stage="sgd", architecture=arch, transform=g, inference=inf, m=250, seed=seed,
                            width=WIDTHS[arch], accuracy=0.45 - spurious[g] + 0.01 * rng.standard_normal(),
                            mse=0.085, failed=failed, failure=kind if failed else "",
                            reason="train accuracy 0.5 < 0.95" if failed else "", path=f"s/{arch}/{g}/{seed}/{inf}"))
    for w, g, inf, seed in itertools.product([8, 16, 32, 64], ["o3_shared", "o3_pixel"], ["nn", "nn_plus"], [0, 1]):
        failed = (w, g, inf) == (8, "o3_pixel", "nn_plus")  # a learning rate too large for the narrowest
        rows.append(row(stage="sgd", architecture="VEC", transform=g, inference=inf, m=1000, seed=seed, width=w,
                        accuracy=0.1 if failed else 0.4 + 0.01 * np.log2(w), mse=0.08, failed=failed,
                        failure="diverged" if failed else "", path=f"f3/{w}/{g}/{inf}/{seed}"))
    for g in ("o3_shared", "o3_pixel"):
        rows.append(row(stage="regression", architecture="VEC", transform=g, inference="ntk", m=1000, seed=0,
                        accuracy=0.47, mse=0.08, path=f"f3k/{g}"))
    for m in (125, 250, 500, 1000, 2000, 3500):
        for arch, g, stage, inf in (("VEC", "identity", "sgd", "nn_plus"), ("VEC", "identity", "regression", "ntk"),
                                    ("LCN", "identity", "sgd", "nn_plus"), ("VEC", "o3_pixel", "sgd", "nn_plus")):
            rows.append(row(stage=stage, architecture=arch, transform=g, inference=inf, m=m, seed=0,
                            width=WIDTHS[arch] if stage == "sgd" else None, accuracy=0.1 * m**0.2,
                            mse=0.2 * m**-0.15, path=f"f4/{m}/{arch}/{g}/{stage}",
                            failed=(m, arch, g) == (3500, "VEC", "o3_pixel"),
                            failure="collapsed" if (m, arch, g) == (3500, "VEC", "o3_pixel") else ""))
        if m == 125:  # two more LCN runs at the first point, both failed: its mean is seed 0's alone
            for seed, kind in ((1, "budget"), (2, "diverged")):
                rows.append(row(stage="sgd", architecture="LCN", transform="identity", inference="nn_plus", m=m,
                                seed=seed, width=WIDTHS["LCN"], accuracy=0.02, mse=0.9, failed=True, failure=kind,
                                path=f"f4/{m}/LCN/identity/sgd/{seed}"))
        for arch, g, inf in itertools.product(ARCHS, GROUPS, ("ntk", "nngp")):
            if m <= 1000:
                rows.append(row(stage="regression", architecture=arch, transform=g, inference=inf, m=m, seed=0,
                                accuracy=0.3, mse=0.3 * m ** -(0.1 + spurious[g]), path=f"s6/{m}/{arch}/{g}/{inf}"))
    for arch, g, init in itertools.product(["FCN", "VEC", "GAP"], ["identity", "o3_pixel"], ["gaussian", "uniform"]):
        rows.append(row(stage="sgd", architecture=arch, transform=g, inference="nn", m=250, seed=0,
                        width=WIDTHS[arch], init=init, accuracy=0.4, mse=0.08, path=f"s5/{arch}/{g}/{init}",
                        failed=(arch, g, init) == ("GAP", "o3_pixel", "uniform"),
                        failure="collapsed" if (arch, g, init) == ("GAP", "o3_pixel", "uniform") else ""))
    files = []
    out = tmp_path_factory.mktemp("runs")
    for i in range(0, len(rows), 100):
        p = out / f"{i}.csv"
        write_rows(p, rows[i : i + 100] + rows[i : i + 1])  # a duplicate row: gathered once
        files.append(p)
    table = out / "runs.csv"
    n = gather(files, table)
    assert n == len({r["path"] + r["stage"] + r["inference"] for r in rows})
    return table


def test_table_schema(runs_csv):
    frame = load_runs(runs_csv)
    assert list(frame.columns) == list(RUN_COLUMNS)
    assert frame["failed"].dtype == bool and frame["accuracy"].dtype.kind == "f"
    assert set(frame["inference"]) == {"ntk", "nngp", "nn", "nn_plus"}
    assert pd.read_csv(runs_csv).shape[1] == len(RUN_COLUMNS)  # one pandas call


def test_rows_refuse_unknown_columns():
    with pytest.raises(ValueError, match="unknown result columns"):
        make_row(stage="sgd", inference="nn", accurcy=0.5)
    with pytest.raises(ValueError, match="stage"):
        make_row(stage="train", inference="nn")


def _png_ok(path):
    data = path.read_bytes()
    return data[:4] == b"\x89PNG" and len(data) > 20_000


@pytest.fixture
def drawn(monkeypatch):
    """drawn(module) -> list that receives every figure the module saves (saved as well, then closed)."""
    import importlib

    def capture(name):
        module = importlib.import_module(f"symflow.figures.{name}")
        figures, save = [], module.save
        monkeypatch.setattr(module, "save", lambda fig, *paths: (figures.append(fig), save(fig, *paths)))
        return figures

    return capture


def texts(ax):
    return [t.get_text() for t in ax.texts]


def marked_x(ax):
    """x positions of the 'no successful run' markers (an 'x' at the bottom of the axes)."""
    return sorted(float(x) for line in ax.lines if line.get_marker() == "x" for x in line.get_xdata())


def series(ax, label):
    """(x, y) of the line or error-bar series labelled `label`."""
    for c in ax.containers:
        if c.get_label() == label:
            line = c.lines[0]
            return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    for line in ax.lines:
        if line.get_label() == label:
            return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    raise KeyError(label)


FRAME = pd.DataFrame({
    "point": ["a", "a", "a", "b", "b", "b", "c", "d"],
    "failed": [False, True, True, True, True, True, False, True],
    "failure": ["", "diverged", "diverged", "collapsed", "budget", "collapsed", "", ""],
    "accuracy": [0.6, 0.05, np.nan, 0.1, 0.1, 0.1, 0.5, 0.3],
})


def test_run_counts_give_k_of_n_and_the_commonest_failure():
    from symflow.figures.style import run_counts

    counts = run_counts(FRAME, ["point"]).set_index("point")
    assert counts.loc["a", ["ok", "runs", "failed_runs", "failure"]].tolist() == [1, 3, 2, "diverged"]
    assert counts.loc["b", ["ok", "runs", "failed_runs", "failure"]].tolist() == [0, 3, 3, "collapsed"]
    assert counts.loc["c", ["ok", "runs", "failed_runs", "failure"]].tolist() == [1, 1, 0, ""]
    assert counts.loc["d", "failure"] == "failed"  # failed without a kind
    tie = FRAME.assign(failure=["", "diverged", "budget", "", "", "", "", ""])
    assert run_counts(tie, "point").set_index("point").loc["a", "failure"] == "budget"  # ties: alphabetical


def test_summarize_averages_successful_runs_only():
    from symflow.figures.style import summarize

    stats = summarize(FRAME, ["point"]).set_index("point")
    assert stats.loc["a", "mean"] == pytest.approx(0.6) and stats.loc["a", "count"] == 1
    assert (stats.loc["a", "ok"], stats.loc["a", "runs"]) == (1, 3)
    assert np.isnan(stats.loc["b", "mean"]) and stats.loc["b", "count"] == 0  # never the collapsed 0.1
    assert np.isnan(stats.loc["d", "mean"])


def test_mark_counts_labels_points_and_marks_those_with_no_success():
    from symflow.figures.style import mark_counts, setup, summarize

    plt = setup()
    stats = summarize(FRAME, ["point"])
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2, 3], stats["mean"], "o-")
    mark_counts(ax, [0, 1, 2, 3], stats, "k")
    assert texts(ax) == ["1/3", "0/3 collapsed", "1/1", "0/1 failed"]
    assert marked_x(ax) == [1.0, 3.0]
    label = ax.texts[0]
    assert label.xy == (0, pytest.approx(0.6))  # the k/N label sits at the point's value
    plt.close(fig)


def test_failure_marks_of_series_failing_at_one_x_stay_apart():
    from symflow.figures.style import FAIL_SPACING, mark_counts, setup, summarize

    plt = setup()
    stats = summarize(FRAME, ["point"])
    fig, ax = plt.subplots()
    for j in range(3):  # three series, each failing at x = 1 and x = 3
        mark_counts(ax, [0, 1, 2, 3], stats, f"C{j}", slot=j)
    fig.canvas.draw()
    for x in (1.0, 3.0):
        marks = sorted(float(line.get_transform().transform((x, 0.025))[0]) for line in ax.lines
                       if line.get_marker() == "x" and float(line.get_xdata()[0]) == x)
        labels = [t.get_window_extent() for t in ax.texts if t.get_position()[0] == x and " " in t.get_text()]
        assert len(marks) == 3 and len(labels) == 3
        gaps = np.diff(marks) * 72 / fig.dpi  # display pixels to points
        assert gaps == pytest.approx([FAIL_SPACING, FAIL_SPACING])
        boxes = sorted(labels, key=lambda b: b.x0)
        assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:]))  # the rotated failure labels do not overlap
    assert marked_x(ax) == [1.0] * 3 + [3.0] * 3  # still at their data x
    plt.close(fig)


def test_an_axis_where_every_series_failed_still_spans_the_failing_x():
    # the CI failure of 254cd81: shifted failure marks left a log x-axis with no data range at all
    import pandas as pd

    from symflow.figures.style import mark_counts, setup

    plt = setup()
    stats = pd.DataFrame({"runs": [2, 2], "ok": [0, 0], "mean": [np.nan, np.nan], "failure": ["budget", "budget"]})
    fig, ax = plt.subplots()
    ax.set_xscale("log")
    for j in range(2):
        mark_counts(ax, [40, 80], stats, f"C{j}", slot=j)
    fig.tight_layout()  # raised "Data cannot be log-scaled" before the marks counted in the data limits
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    assert lo < 40 and hi > 80
    plt.close(fig)


def test_fig2(runs_csv, tmp_path, drawn):
    from symflow.figures.fig2 import plot_fig2

    figures = drawn("fig2")
    plot_fig2(runs_csv, tmp_path / "f.pdf", tmp_path / "f.png", architectures=ARCHS, transforms=GROUPS, m=250,
              widths=WIDTHS)
    assert (tmp_path / "f.pdf").stat().st_size > 10_000 and _png_ok(tmp_path / "f.png")
    ntk, nn, nn_plus = figures[0].axes[:3]
    assert not [t for t in texts(ntk) if "/" in t]  # kernels never fail: no counts
    counts = [t.split("/") for t in texts(nn)]
    assert len(counts) == len(ARCHS) * len(GROUPS)  # one k/N label per finite point
    assert sorted(t for t in texts(nn) if t.split("/")[0] != t.split("/")[1]) == ["1/2"]  # LCN on O(3d)
    assert "0/2 collapsed" in texts(nn_plus) and "0/2 collapsed" not in texts(nn)
    x, y = series(nn_plus, "GAP")
    perm = GROUPS.index("perm")
    assert np.isnan(y[perm]) and np.isfinite(np.delete(y, perm)).all()  # the collapsed 0.25 is not drawn
    assert marked_x(nn_plus) == [pytest.approx(x[perm])]
    assert "k/N" in " ".join(t.get_text() for t in figures[0].texts)  # the footnote



def test_fig2_with_an_architecture_trained_on_clean_data_only(runs_csv, tmp_path, drawn):
    """experiments.fig2.network_transforms (the default trains GAP_n NN+ on clean data alone): its
    finite point is drawn at identity, and the other transforms show no point and no count."""
    import pandas as pd

    from symflow.figures.fig2 import plot_fig2

    frame = pd.read_csv(runs_csv)
    gone = (frame["architecture"] == "GAP") & (frame["stage"] == "sgd") & (frame["transform"] != "identity")
    csv = tmp_path / "runs.csv"
    frame[~gone].to_csv(csv, index=False)
    figures = drawn("fig2")
    plot_fig2(csv, tmp_path / "f.pdf", tmp_path / "f.png", architectures=ARCHS, transforms=GROUPS, m=250,
              widths=WIDTHS)
    assert _png_ok(tmp_path / "f.png")
    nn_plus = figures[0].axes[2]
    x, y = series(nn_plus, "GAP")
    assert np.isfinite(y[GROUPS.index("identity")]) and np.isnan(np.delete(y, GROUPS.index("identity"))).all()
    assert len([t for t in texts(nn_plus) if "/" in t]) == (len(ARCHS) - 1) * len(GROUPS) + 1

def test_fig3(runs_csv, tmp_path, drawn):
    from symflow.figures.fig3 import plot_fig3

    figures = drawn("fig3")
    plot_fig3(runs_csv, tmp_path / "f.pdf", tmp_path / "f.png", widths=[8, 16, 32, 64],
              transforms=["o3_shared", "o3_pixel"], recipes=["nn", "nn_plus"], m=1000)
    assert _png_ok(tmp_path / "f.png")
    nn, nn_plus = figures[0].axes[:2]
    assert "0/2 diverged" in texts(nn_plus) and texts(nn).count("2/2") == 8
    x, y = series(nn_plus, "VEC$_n$, " + group_label("o3_pixel"))
    assert np.isnan(y[list(x).index(8)]) and marked_x(nn_plus) == [8.0]


def test_fig4(runs_csv, tmp_path, drawn):
    from symflow.figures.fig4 import curve_tables, plot_fig4

    figures = drawn("fig4")
    sizes = [125, 250, 500, 1000, 2000, 3500]
    plot_fig4(runs_csv, tmp_path / "f.pdf", tmp_path / "f.png", sizes=sizes, recipe="nn_plus", widths=WIDTHS,
              fit_points=3)
    assert _png_ok(tmp_path / "f.png")
    curves = curve_tables(load_runs(runs_csv), "nn_plus", WIDTHS, sizes)
    assert [len(acc) for _, _, acc, _ in curves] == [6, 6, 6, 6]
    lcn = dict(zip([label for label, *_ in curves], curves))["LCN$_n$"][2].set_index("m")
    assert lcn.loc[125, "mean"] == pytest.approx(0.1 * 125**0.2)  # the one success, not the failed 0.02
    assert (lcn.loc[125, "ok"], lcn.loc[125, "runs"]) == (1, 3)
    acc_ax, mse_ax = figures[0].axes[:2]
    for ax in (acc_ax, mse_ax):
        assert "1/3" in texts(ax) and "0/1 collapsed" in texts(ax) and marked_x(ax) == [3500.0]
    assert not [t for t in texts(acc_ax) if t.endswith("/1") and t != "1/1"]


def test_figS5(runs_csv, tmp_path, drawn):
    from symflow.figures.figS5 import plot_figS5

    figures = drawn("figS5")
    plot_figS5(runs_csv, tmp_path / "f.pdf", tmp_path / "f.png", architectures=["FCN", "VEC", "GAP"],
               transforms=["identity", "o3_pixel"], recipes=["nn"], m=250, widths=WIDTHS)
    assert _png_ok(tmp_path / "f.png")
    ax = figures[0].axes[0]
    # Gaussian bars: these runs and fig. 2's two seeds (3/3); uniform: one run each, GAP on O(3)^d collapsed
    assert sorted(texts(ax)) == sorted(["3/3"] * 6 + ["1/1"] * 5 + ["0/1 collapsed"])
    bars = [p for p in ax.patches if p.get_height() > 0 and p.get_fill()]
    assert len(bars) == 11 and len(marked_x(ax)) == 1  # the failed bar is an empty hatched column, no value


def test_figS6_and_its_exponents(runs_csv, tmp_path):
    from symflow.figures.figS6 import exponents, plot_figS6

    plot_figS6(runs_csv, tmp_path / "f.pdf", tmp_path / "f.png", architectures=ARCHS, transforms=GROUPS,
               sizes=[125, 250, 500, 1000])
    assert _png_ok(tmp_path / "f.png")
    frame = load_runs(runs_csv)
    frame = frame[frame["path"].str.startswith("s6/")]
    alphas = exponents(frame).set_index(["inference", "architecture", "transform"])["alpha"]
    assert alphas[("ntk", "GAP", "perm")] == pytest.approx(0.3, abs=1e-9)  # the exact synthetic power law
    assert alphas[("nngp", "FCN", "identity")] == pytest.approx(0.1, abs=1e-9)


def test_figS1(tmp_path, drawn):
    from symflow.figures.figS1 import plot_figS1

    rows = [dict(width=w, t=t, m=500, seed=0, ensemble=3, members_used=3, failed=False,
                 accuracy=0.5 - 0.1 * t - 0.01 * w / 16, sdist_gap=0.01 + 0.02 * t, sdist_vec_inf=0.05 - 0.02 * t)
            for w in (16, 32) for t in (0, 0.5, 1)]
    rows[1].update(members_used=2)  # one member failed: the point stands, labelled 2/3
    rows[5].update(failed=True, accuracy=0.1)  # every member failed: marked, no value
    pd.DataFrame(rows).to_csv(tmp_path / "sdist.csv", index=False)
    figures = drawn("figS1")
    plot_figS1(tmp_path / "sdist.csv", tmp_path / "f.pdf", tmp_path / "f.png")
    assert _png_ok(tmp_path / "f.png")
    for ax in figures[0].axes[:3]:
        assert sorted(texts(ax)) == sorted(["3/3"] * 3 + ["2/3", "3/3", "0/3 members"])
        assert marked_x(ax) == [1.0]
        x, y = series(ax, "n = 32")
        assert np.isnan(y[list(x).index(1.0)])


def test_cells_are_plain_numbers():
    r = make_row(stage="sgd", inference="nn", accuracy=np.float64(0.25), m=np.int64(40), failed=np.bool_(True),
                 mse=float("nan"))
    assert (r["accuracy"], r["m"], r["failed"], r["mse"]) == ("0.25", "40", "True", "")
