"""The README's report command builds (issue 15): the smallest whole default target on the
tiny config (tests/configs/report.yaml merged over tiny.yaml), then `snakemake --report`,
with the claims table and the failed-runs table in it."""

from __future__ import annotations

import csv
import os
import subprocess

from conftest import TINY, snakemake_cmd

REPORT = TINY.parent / "report.yaml"


def snakemake(workdir, *args, timeout):
    # run_snakemake passes tiny.yaml alone; --configfile keeps only its last occurrence
    cmd = snakemake_cmd() + ["--cores", "2", *args, "--configfile", str(TINY), str(REPORT)]
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_report_builds_with_claims(workdir):
    snakemake(workdir, timeout=900)
    claims = list(csv.DictReader(open(workdir / "results" / "claims.csv")))
    assert claims and {r["verdict"] for r in claims} <= {"holds", "fails", "untestable"}
    verdicts = {r["claim"]: r for r in claims}
    # Thm. 4.1's audit runs on every config; the Fig. 3 peak needs widths the tiny run lacks
    assert verdicts["thm41_invariant_pairs_equal"]["verdict"] == "holds"
    assert verdicts["fig3_o3shared_peak_then_degrades"]["verdict"] == "untestable"
    assert (workdir / "results" / "tables" / "failed_runs.csv").exists()
    snakemake(workdir, "--report", "results/report.html", timeout=300)
    html = (workdir / "results" / "report.html").read_text()
    assert "claims.csv" in html and "failed_runs.csv" in html and "fig2.png" in html
