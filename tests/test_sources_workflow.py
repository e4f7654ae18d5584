"""The whole tiny workflow on a source other than CIFAR-10 (issue 31, item 3): the shipped digits
(one channel: Fig. S1 off) and an image folder made here from real images (CIFAR-10 sample test
images of four classes written as PNGs: three channels, so Fig. S1 and the path runs too; K = 4
outputs and one-hot targets, chance 1 / 4), to figures and claims.
The claims name the dataset of every verdict; the paper's effects (about CIFAR-10) are not set
beside them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPORT, TINY, make_workdir, snakemake_with
from test_sources import write_folder

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

FIGURES = ("fig2", "fig3", "fig4", "figS5", "figS6", "figS2")


def run_on(workdir: Path, overlay: dict) -> Path:
    extra = workdir / "source.yaml"
    extra.write_text(yaml.safe_dump(overlay))
    snakemake_with(workdir, [TINY, REPORT, extra], timeout=1500)
    return workdir / "results"


def check_results(results: Path, stem: str, figures=FIGURES) -> pd.DataFrame:
    for fig in figures:
        assert (results / f"{fig}.pdf").stat().st_size > 5_000, fig
    runs = pd.read_csv(results / "tables" / "runs.csv")
    (dataset,) = set(runs["dataset"])
    assert dataset.startswith(f"{stem}.")
    audit = pd.read_csv(results / "symmetry_audit.csv")
    assert len(audit) and set(audit["verdict"]) == {"agrees"}  # Thm 4.1 on these data, before any reuse
    claims = pd.read_csv(results / "claims.csv", keep_default_na=False)
    assert len(claims) > 20 and claims["run_scale"].str.startswith(dataset.split("-r")[0]).all()
    assert (claims["paper_effect"] == "").all()  # the paper's numbers are about CIFAR-10
    assert (results / "report" / "summary.rst").read_text().count(dataset) >= 1
    return claims


def test_the_tiny_workflow_on_the_digits(tmp_path):
    results = run_on(make_workdir(tmp_path / "wf"),
                     {"data": {"source": "digits", "n_test": 80, "test_holdout": 0},
                      "path_t": [], "experiments": {"figS1": {"t": []}}})
    check_results(results, "digits")
    assert not (results / "figS1.pdf").exists()  # no rotation path on one channel


def test_the_tiny_workflow_on_an_image_folder_of_four_classes(tmp_path):
    from symflow.data import load_dataset
    from symflow.h5io import read_h5

    classes = ("airplane", "bird", "cat", "frog")  # 400 real images, as many as ten classes of 40 gave
    folder = write_folder(tmp_path / "images", per_class=100, classes=classes)
    results = run_on(make_workdir(tmp_path / "wf"),
                     {"data": {"source": "folder", "folder": str(folder), "n_test": 80, "test_holdout": 80}})
    check_results(results, "folder", FIGURES + ("figS1",))
    assert (folder / "SHA256SUMS").exists()
    (data,) = sorted(results.glob("data/*/identity/*.h5"))[:1]
    d = load_dataset(data)
    assert d["attrs"]["num_classes"] == 4 and d["attrs"]["label_names"] == list(classes)
    assert d["y_train"].shape[1] == 4
    runs = pd.read_csv(results / "tables" / "runs.csv")
    for stage in ("regression", "sgd"):  # kernel regression and the finite networks: 4 outputs
        path = results.parent / runs[runs["stage"] == stage]["path"].iloc[0]
        arrays = read_h5(path)[0]
        assert {arrays[f"{part}_outputs"].shape[-1] for part in ("val", "test")} == {4}, stage
    assert (results / "fig2_curves.png").exists()
