"""The README's report command builds (issues 15, 28): the smallest whole default target on the
tiny config (tests/configs/report.yaml merged over tiny.yaml), then `snakemake --report`: its own
first page (what was run, what it decides), the claims, runs.csv, the symmetry audit, the
training table and the training curves in it."""

from __future__ import annotations

import csv
import json
import re

import pytest

import symflow

from conftest import REPORT, TINY, snakemake_with

pytestmark = pytest.mark.workflow  # the smallest whole default target, run once (complete_run)


def test_report_builds_with_claims(complete_run):
    workdir = complete_run
    claims = list(csv.DictReader(open(workdir / "results" / "claims.csv")))
    assert claims and {r["verdict"] for r in claims} <= {"holds", "fails", "inconclusive", "untestable"}
    verdicts = {r["claim"]: r for r in claims}
    # Thm. 4.1's audit runs on every config; the Fig. 3 peak needs widths the tiny run lacks
    assert verdicts["thm41_invariant_pairs_equal"]["verdict"] == "holds"
    assert verdicts["fig3_o3shared_peak_then_degrades"]["verdict"] == "untestable"
    assert (workdir / "results" / "tables" / "failed_runs.csv").exists()
    # the training curves: every finite-network run and evaluation, and a figure per figure
    runs = list(csv.DictReader(open(workdir / "results" / "tables" / "runs.csv")))
    curves = list(csv.DictReader(open(workdir / "results" / "tables" / "curves.csv")))
    finite = {r["path"] for r in runs if r["stage"] == "sgd"}
    assert finite and finite <= {r["path"] for r in curves}
    # and the members of Fig. S1's ensembles, which runs.csv holds as their ensembles' rows
    assert {r["figures"] for r in curves if r["path"] not in finite} == {"figS1"}
    assert {r["figures"] for r in curves} >= {"fig2 figS5"}  # tiny's VEC identity NN run is in both
    for figure in ("fig2", "fig3", "fig4", "figS1", "figS5"):
        assert (workdir / "results" / f"{figure}_curves.png").read_bytes()[:4] == b"\x89PNG"
    # provenance in every table (outside a git checkout the commit is empty; the version is known)
    for table in (runs, curves, claims, list(csv.DictReader(open(workdir / "results" / "symmetry_audit.csv")))):
        assert {r["symflow_version"] for r in table} == {symflow.__version__}
    snakemake_with(workdir, [TINY, REPORT], "--report", "results/report.html", timeout=300)
    html = (workdir / "results" / "report.html").read_text()
    assert "claims.csv" in html and "failed_runs.csv" in html and "fig2.png" in html
    for name in ("runs.csv", "symmetry_audit.csv", "training.csv", "fig2_curves.png", "summary.rst"):
        assert name in html, name
    # the report's own page (workflow/report/workflow.rst) with the run's summary included
    page = json.loads(re.search(r'var workflow_desc = (".*?");\n', html, re.S).group(1))
    assert "symflow: Synergy and Symmetry in Deep Learning" in page and "What it decides" in page
    assert "cifar10-sample.0e454ec3-r8-n200.40.80-split0" in page and "system-message" not in page
    counts = {v: sum(r["verdict"] == v for r in claims) for v in {r["verdict"] for r in claims}}
    assert all(f"{v}: {n}" in page for v, n in counts.items())


def test_every_output_gets_the_umask_mode(complete_run):
    """After a whole run, every file under results/ has the mode the umask gives a new file
    (issue 29: before, atomic writes kept tempfile's private 0600)."""
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    modes = {p.relative_to(complete_run): stat.S_IMODE(p.stat().st_mode)
             for p in (complete_run / "results").rglob("*") if p.is_file()}  # fmt: skip
    assert len(modes) > 20
    assert {p: oct(m) for p, m in modes.items() if m != 0o666 & ~umask} == {}
