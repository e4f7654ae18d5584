"""The README's report command builds (issue 15): the smallest whole default target on the
tiny config (tests/configs/report.yaml merged over tiny.yaml), then `snakemake --report`,
with the claims table and the failed-runs table in it."""

from __future__ import annotations

import csv

import pytest

from conftest import REPORT, TINY, snakemake_with

pytestmark = pytest.mark.workflow  # the smallest whole default target, run once (complete_run)


def test_report_builds_with_claims(complete_run):
    workdir = complete_run
    claims = list(csv.DictReader(open(workdir / "results" / "claims.csv")))
    assert claims and {r["verdict"] for r in claims} <= {"holds", "fails", "untestable"}
    verdicts = {r["claim"]: r for r in claims}
    # Thm. 4.1's audit runs on every config; the Fig. 3 peak needs widths the tiny run lacks
    assert verdicts["thm41_invariant_pairs_equal"]["verdict"] == "holds"
    assert verdicts["fig3_o3shared_peak_then_degrades"]["verdict"] == "untestable"
    assert (workdir / "results" / "tables" / "failed_runs.csv").exists()
    snakemake_with(workdir, [TINY, REPORT], "--report", "results/report.html", timeout=300)
    html = (workdir / "results" / "report.html").read_text()
    assert "claims.csv" in html and "failed_runs.csv" in html and "fig2.png" in html
