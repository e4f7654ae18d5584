"""The main job on the tiny config: every stage chained to results/fig4.pdf, then a config edit
that plans only the jobs it touches."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest

from conftest import TINY, job_stats, snakemake_cmd

# Depth 2 instead of 8, two training sizes: the same rules and files, a fraction of the time.
FAST = "model:\n  depth: 2\nexperiments:\n  fig4: {m: [40, 80], fit_points: 2}\n"


def _snakemake(workdir, overlay, *targets, dry_run=False, timeout=1200):
    """snakemake on the tiny config plus `overlay` (a YAML file)."""
    cmd = snakemake_cmd() + ["--cores", "2"] + (["-n"] if dry_run else [])
    cmd += ["--configfile", str(TINY), str(overlay), "--", *targets]
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


@pytest.mark.slow
def test_fig4_end_to_end_then_one_edit_plans_only_its_jobs(workdir):
    fast = workdir / "fast.yaml"
    fast.write_text(FAST)
    _snakemake(workdir, fast, "results/fig4.pdf")
    for ext in ("pdf", "png"):
        assert (workdir / "results" / f"fig4.{ext}").stat().st_size > 10_000
    table = pd.read_csv(workdir / "results" / "tables" / "fig4.csv")
    assert not table.empty and set(table["m"]) == {40, 80}
    curves = {(r.architecture, r.transform, r.inference) for r in table.itertuples()}
    for curve in [("VEC", "identity", "nn_plus"), ("VEC", "o3_pixel", "nn_plus"), ("LCN", "identity", "nn_plus"),
                  ("VEC", "identity", "ntk")]:
        assert curve in curves, (curve, curves)
    assert table["accuracy"].between(0, 1).all()
    assert (workdir / "logs" / "figures" / "fig4.log").read_text().count("wrote") == 1

    # a second run has nothing to do; adding one training size plans its jobs only
    proc = _snakemake(workdir, fast, "results/fig4.pdf", dry_run=True)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    more = workdir / "more.yaml"
    more.write_text(FAST.replace("[40, 80]", "[40, 80, 120]"))
    proc = _snakemake(workdir, more, "results/fig4.pdf", dry_run=True)
    jobs = job_stats(proc.stdout + proc.stderr)
    assert "transform_dataset" not in jobs  # the data are cached
    assert jobs.get("train_sgd") == 3 and jobs.get("estimate_eta0") == 3  # VEC, VEC on o3_pixel, LCN at m = 120
    assert jobs.get("fit_kernel_regression", 0) <= 2  # VEC_inf (NTK, and NNGP where the figure asks for it)
    # only the new blocks (B = 40): train (0, 2), (1, 2), (2, 2), val 0-2, test 0-2 and 1-2
    assert jobs.get("compute_gram_block") == 6
    assert jobs.get("plot_figure") == 1 and jobs.get("aggregate_runs") == 1
