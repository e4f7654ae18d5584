"""Figures from synthetic tables (no training needed), and the gathered table's schema."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from symflow.figures.table import gather, load_runs
from symflow.results import RUN_COLUMNS, make_row, write_rows

DATASET = "cifar10-sample-r8-n3500.500.1000-k0"
ARCHS = ["FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8"]
GROUPS = ["identity", "o3_shared", "o3_pixel", "perm", "o3d"]
WIDTHS = {"FCN": 256, "LCN": 8, "VEC": 32, "GAP": 32, "LAP4": 32, "LAP8": 32}


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
            failed = bool(arch == "LCN" and g == "o3d" and seed == 1)
            rows.append(row(stage="sgd", architecture=arch, transform=g, inference=inf, m=250, seed=seed,
                            width=WIDTHS[arch], accuracy=0.45 - spurious[g] + 0.01 * rng.standard_normal(),
                            mse=0.085, failed=failed, reason="train accuracy 0.5 < 0.95" if failed else "",
                            path=f"s/{arch}/{g}/{seed}/{inf}"))
    for w, g, inf, seed in itertools.product([8, 16, 32, 64], ["o3_shared", "o3_pixel"], ["nn", "nn_plus"], [0, 1]):
        rows.append(row(stage="sgd", architecture="VEC", transform=g, inference=inf, m=1000, seed=seed, width=w,
                        accuracy=0.4 + 0.01 * np.log2(w), mse=0.08, path=f"f3/{w}/{g}/{inf}/{seed}"))
    for g in ("o3_shared", "o3_pixel"):
        rows.append(row(stage="regression", architecture="VEC", transform=g, inference="ntk", m=1000, seed=0,
                        accuracy=0.47, mse=0.08, path=f"f3k/{g}"))
    for m in (125, 250, 500, 1000, 2000, 3500):
        for arch, g, stage, inf in (("VEC", "identity", "sgd", "nn_plus"), ("VEC", "identity", "regression", "ntk"),
                                    ("LCN", "identity", "sgd", "nn_plus"), ("VEC", "o3_pixel", "sgd", "nn_plus")):
            rows.append(row(stage=stage, architecture=arch, transform=g, inference=inf, m=m, seed=0,
                            width=WIDTHS[arch] if stage == "sgd" else None, accuracy=0.1 * m**0.2,
                            mse=0.2 * m**-0.15, path=f"f4/{m}/{arch}/{g}/{stage}"))
        for arch, g, inf in itertools.product(ARCHS, GROUPS, ("ntk", "nngp")):
            if m <= 1000:
                rows.append(row(stage="regression", architecture=arch, transform=g, inference=inf, m=m, seed=0,
                                accuracy=0.3, mse=0.3 * m ** -(0.1 + spurious[g]), path=f"s6/{m}/{arch}/{g}/{inf}"))
    for arch, g, init in itertools.product(["FCN", "VEC", "GAP"], ["identity", "o3_pixel"], ["gaussian", "uniform"]):
        rows.append(row(stage="sgd", architecture=arch, transform=g, inference="nn", m=250, seed=0,
                        width=WIDTHS[arch], init=init, accuracy=0.4, mse=0.08, path=f"s5/{arch}/{g}/{init}"))
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


def test_fig2(runs_csv, tmp_path):
    from symflow.figures.fig2 import plot_fig2

    plot_fig2(runs_csv, tmp_path / "f.pdf", tmp_path / "f.png", architectures=ARCHS, transforms=GROUPS, m=250,
              widths=WIDTHS)
    assert (tmp_path / "f.pdf").stat().st_size > 10_000 and _png_ok(tmp_path / "f.png")


def test_fig3(runs_csv, tmp_path):
    from symflow.figures.fig3 import plot_fig3

    plot_fig3(runs_csv, tmp_path / "f.pdf", tmp_path / "f.png", widths=[8, 16, 32, 64],
              transforms=["o3_shared", "o3_pixel"], recipes=["nn", "nn_plus"], m=1000)
    assert _png_ok(tmp_path / "f.png")


def test_fig4(runs_csv, tmp_path):
    from symflow.figures.fig4 import curve_tables, plot_fig4

    sizes = [125, 250, 500, 1000, 2000, 3500]
    plot_fig4(runs_csv, tmp_path / "f.pdf", tmp_path / "f.png", sizes=sizes, recipe="nn_plus", widths=WIDTHS,
              fit_points=3)
    assert _png_ok(tmp_path / "f.png")
    curves = curve_tables(load_runs(runs_csv), "nn_plus", WIDTHS, sizes)
    assert [len(acc) for _, _, acc, _ in curves] == [6, 6, 6, 6]


def test_figS5(runs_csv, tmp_path):
    from symflow.figures.figS5 import plot_figS5

    plot_figS5(runs_csv, tmp_path / "f.pdf", tmp_path / "f.png", architectures=["FCN", "VEC", "GAP"],
               transforms=["identity", "o3_pixel"], recipes=["nn"], m=250, widths=WIDTHS)
    assert _png_ok(tmp_path / "f.png")


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


def test_figS1(tmp_path):
    from symflow.figures.figS1 import plot_figS1

    rows = [dict(width=w, t=t, m=500, ensemble=3, accuracy=0.5 - 0.1 * t - 0.01 * w / 16,
                 sdist_gap=0.01 + 0.02 * t, sdist_vec_inf=0.05 - 0.02 * t) for w in (16, 32) for t in (0, 0.5, 1)]
    pd.DataFrame(rows).to_csv(tmp_path / "sdist.csv", index=False)
    plot_figS1(tmp_path / "sdist.csv", tmp_path / "f.pdf", tmp_path / "f.png")
    assert _png_ok(tmp_path / "f.png")


def test_cells_are_plain_numbers():
    r = make_row(stage="sgd", inference="nn", accuracy=np.float64(0.25), m=np.int64(40), failed=np.bool_(True),
                 mse=float("nan"))
    assert (r["accuracy"], r["m"], r["failed"], r["mse"]) == ("0.25", "40", "True", "")
