"""The report's first page: symflow.report's summary (what was run, what it decides) and
workflow/report/workflow.rst, rendered as Snakemake renders a `report:` page (Jinja2, then
docutils), with and without the summary among the report's files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import CONFIG, REPO
from symflow.configuration import validate
from symflow.jobs import without_speed_knobs
from symflow.report import summary_rst, write_summary

DATASET = "cifar10-sample.0e454ec3-r8-n3500.250.1000-split0"


def _tables():
    claims = pd.DataFrame({"claim": ["a_b", "c", "d", "e"], "source": ["Fig. 2", "Sec. 4", "Fig. 3", "Fig. 4"],
                           "verdict": ["untestable", "holds", "fails", "holds"]})
    runs = pd.DataFrame({
        "stage": ["regression"] * 3 + ["sgd"] * 4 + ["ensemble"],
        "failed": [False] * 5 + [True, False, False],
        "symflow_version": ["0.1.0"] * 8,
        "symflow_commit": ["a" * 40] * 6 + ["b" * 40 + "-dirty"] * 2,
    })
    audit = pd.DataFrame({"verdict": ["agrees", "agrees", "unexpected-invariance"]})
    training = pd.DataFrame({"architecture": ["VEC", "all"], "runs": [4, 4], "converged": [3, 3],
                             "median_epochs": [120.0, 120.0], "total_wall_min": [2.5, 2.5]})
    return dict(claims=claims, runs=runs, audit=audit, training=training)


def _config():
    return without_speed_knobs(validate(yaml.safe_load(CONFIG.read_text())))


def test_summary_says_what_was_run_and_what_it_decides():
    text = summary_rst(_config(), DATASET, **_tables())
    run, decides = text.split("What it decides")
    assert "3,500 training, 250 validation and 1,000 test images" in run and f"``{DATASET}``" in run
    assert "``0e454ec3``" in run and "8 x 8" in run and "reduced" in run
    assert "3 kernel regressions; 4 finite networks trained by SGD (1 failed" in run and "1 ensemble" in run
    assert "3 pairs, agrees: 2, unexpected-invariance: 1" in run
    # the runs' provenance, most rows first, and the page's own
    assert f"0.1.0 at commit ``{'a' * 40}`` (6 rows); 0.1.0 at commit ``{'b' * 40}-dirty`` (2 rows)" in run
    assert "wrote this page" in run
    # claims: counts per verdict in a fixed order, then each claim
    assert "Of 4 claims of the paper (results/claims.csv, category Claims): **holds: 2**, **fails: 1**, " \
           "**untestable: 1**." in decides
    assert decides.index("``a_b``") < decides.index("``c``")
    assert "Finite-network training: 4 runs, 3 converged" in decides


def test_summary_at_paper_scale_and_written_to_file(tmp_path):
    config = _config()
    paper = "cifar10-official.c58f3010-r32-n45000.5000.10000-split0"
    assert "the paper's (full CIFAR-10" in summary_rst(config, paper, **_tables())
    t = _tables()
    for name in ("claims", "audit"):
        t[name].to_csv(tmp_path / f"{name}.csv", index=False)
    t["training"].to_csv(tmp_path / "training.csv", index=False)
    from symflow.figures.table import gather
    from symflow.results import make_row, write_row

    write_row(tmp_path / "r.csv", make_row(stage="sgd", inference="nn", dataset=DATASET, path="x.h5", failed=True))
    gather([tmp_path / "r.csv"], tmp_path / "runs.csv")
    text = write_summary(tmp_path / "out" / "summary.rst", config, DATASET, claims_csv=tmp_path / "claims.csv",
                         runs_csv=tmp_path / "runs.csv", audit_csv=tmp_path / "audit.csv",
                         training_csv=tmp_path / "training.csv")
    assert (tmp_path / "out" / "summary.rst").read_text() == text + "\n"
    assert "1 finite network trained by SGD (1 failed" in text


@dataclass
class _File:  # what Snakemake's report hands a page as `files`: each file's name and path
    target: str
    path: Path


def _render_page(files, config) -> str:
    """workflow/report/workflow.rst as Snakemake 9 renders a `report:` page, docutils warnings as errors."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    class Snakemake:
        pass

    Snakemake.config = config
    links = "\n".join(f".. _{f.target}: javascript:show('{f.target}')" for f in files)
    source = (REPO / "workflow" / "report" / "workflow.rst").read_text() + "\n\n" + links + "\n"
    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(source).render(
        snakemake=Snakemake, categories={}, files=files)
    return publish_parts(text, writer="html", settings_overrides={"halt_level": 2})["html_body"]


@pytest.mark.parametrize("with_summary", [True, False])
def test_the_page_renders_with_and_without_the_summary(tmp_path, monkeypatch, with_summary):
    monkeypatch.chdir(tmp_path)  # Snakemake builds the report in the working directory
    config = validate(yaml.safe_load(CONFIG.read_text()))
    summary = Path("results/report/summary.rst")
    summary.parent.mkdir(parents=True)
    summary.write_text(summary_rst(without_speed_knobs(config), DATASET, **_tables()) + "\n")
    files = [_File("fig2.png", Path("results/fig2.png")), _File("fig2_curves.png", Path("results/fig2_curves.png")),
             _File("runs.csv", Path("results/tables/runs.csv"))]
    if with_summary:
        files.append(_File("summary.rst", summary))
    html = _render_page(files, config)
    assert "symflow: Synergy and Symmetry in Deep Learning" in html
    assert ("What it decides" in html) == with_summary
    assert ("do not include" in html) != with_summary
    for target in ("fig2.png", "fig2_curves.png", "runs.csv"):
        assert f"javascript:show('{target}')" in html  # a link to each figure and table
