"""The main job on the tiny config: every stage chained to results/fig4.pdf, then a config edit
that plans only the jobs it touches."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest

from conftest import TINY, job_stats, planned, planned_blocks, snakemake_cmd

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
    # the jobs shared JAX's compilation cache (resources.compilation_cache, relative to the workdir)
    assert len(list((workdir / ".cache" / "jax").glob("*-cache"))) > 10

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
    # only the new blocks (B = 40): train (0, 2), (1, 2), (2, 2), val 0-2, test 0-2 and 1-2, the
    # new column, as one pack (kernels.pack_minutes)
    blocks = planned_blocks(planned(proc.stdout + proc.stderr))
    assert sorted(b.rsplit("/B40/", 1)[1] for b in blocks) == [
        "test/0-2.h5", "test/1-2.h5", "train/0-2.h5", "train/1-2.h5", "train/2-2.h5", "val/0-2.h5"]
    assert jobs.get("compute_gram_block_pack") == 1 and "compute_gram_block" not in jobs
    assert jobs.get("plot_figure") == 1 and jobs.get("aggregate_runs") == 1


# Fig. 4's flip option on 40 training images: the last point, m = 80, trains and regresses
# on the 40 images plus their mirror images (a dataset of its own, named ...-flip).
FLIP = """model:
  depth: 2
data: {n_train: 40}
sgd: {success_train_accuracy: 0.0}  # this test is about the flipped data, not about fitting it in 60 steps
experiments:
  fig3: {m: 40}
  figS1: {m: 40}
  fig4: {m: [20, 40], flip: true, fit_points: 2}
"""


@pytest.mark.slow
def test_fig4_flip_point_uses_mirrored_training_set(workdir):
    import h5py

    overlay = workdir / "flip.yaml"
    overlay.write_text(FLIP)
    _snakemake(workdir, overlay, "results/fig4.pdf")
    table = pd.read_csv(workdir / "results" / "tables" / "fig4.csv")
    assert set(table["m"]) == {20, 40, 80}
    flipped = table[table["m"] == 80]
    assert flipped["dataset"].str.endswith("-flip").all() and not flipped["failed"].any()
    assert {(r.architecture, r.transform, r.inference) for r in flipped.itertuples()} >= {
        ("VEC", "identity", "ntk"), ("VEC", "identity", "nn_plus"), ("LCN", "identity", "nn_plus"),
        ("VEC", "o3_pixel", "nn_plus")}
    assert (table[table["m"] < 80]["dataset"].str.endswith("-flip") == False).all()  # noqa: E712
    data = sorted((workdir / "results" / "data").glob("*-flip/identity/s0.h5"))
    assert len(data) == 1
    with h5py.File(data[0]) as f:
        x = f["x_train"][...]
    assert x.shape[0] == 80 and (x[40:] == x[:40, :, ::-1, :]).all()
    assert (workdir / "results" / "fig4.png").stat().st_size > 10_000
