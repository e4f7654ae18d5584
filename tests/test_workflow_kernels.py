"""The kernel stage end to end on the tiny config: two regressions and the symmetry audit
run for real; then dry runs show the reuse: raising m plans only the new blocks, and a
transform the architecture is invariant to plans no blocks at all (unless reuse is off)."""

from __future__ import annotations

import csv
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_config, planned, planned_blocks

# a real run, then dry runs against its results: runs Snakemake jobs (make test-fast leaves it out)
pytestmark = pytest.mark.workflow

from symflow.h5io import read_h5

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "configs" / "tiny.yaml"
# smaller than tiny.yaml where it matters for this test: 2 hidden layers (quick to compile),
# one test block, four audit images, and few (architecture, transform) pairs to audit
OVERRIDE = """
model: {depth: 2}
data: {n_test: 40}
kernels: {audit_size: 4, backend: nt}  # the reference backend (the default target's blocks, so packed)
regression: {kernels: [ntk]}
experiments:
  fig2: {architectures: [FCN, VEC], transforms: [identity, o3_pixel], m: 40, seeds: [0]}
  fig3: {transforms: [o3_pixel]}
  figS1: {t: [1.0]}
  figS6: {architectures: [FCN], transforms: [identity], m: [20, 40]}
"""
DATASET = "cifar10-sample.0e454ec3-r8-n200.40.40-split0"
HP = "L2-w2-b0.01-f3"


def regression(arch, transform, m, kernel="ntk", ext="csv"):
    return f"results/regression/{DATASET}/{arch}/{HP}/nt-float32/{transform}/s0/m{m}/{kernel}.{ext}"


def snakemake(workdir: Path, *targets: str, dry: bool = False, extra_config: str | None = None) -> str:
    configs = [str(TINY), str(workdir / "override.yaml")]
    if extra_config:
        (workdir / "extra.yaml").write_text(extra_config)
        configs.append(str(workdir / "extra.yaml"))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", *configs, "--cores", "2", *(["-n"] if dry else []), *targets]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("kernels-workflow")
    copy_config(work)
    (work / "override.yaml").write_text(OVERRIDE)
    return work  # (data.sample_dir null: the sample shipped in the package)


def test_regressions_and_audit_run(workdir):
    snakemake(workdir, "results/symmetry_audit.csv", regression("FCN", "identity", 40),
              regression("VEC", "o3_pixel", 40))
    with open(workdir / "results/symmetry_audit.csv") as fh:
        rows = list(csv.DictReader(fh))
    pairs = {(r["architecture"], r["transform"]): r for r in rows}
    assert set(pairs) == {("FCN", "identity"), ("FCN", "o3_pixel"), ("VEC", "identity"), ("VEC", "o3_pixel"),
                          ("VEC", "so3_path-t1.0"), ("LCN=VEC", "identity")}
    assert all(r["verdict"] == "agrees" for r in rows), rows
    # VEC on o3_pixel data was served by the untransformed blocks, checked by the audit
    _, attrs = read_h5(workdir / regression("VEC", "o3_pixel", 40, ext="h5"))
    assert attrs["kernel_transform"] == "identity" and attrs["transform"] == "o3_pixel"
    assert not (workdir / f"results/kernels/{DATASET}/VEC/{HP}/nt-float32/o3_pixel").exists()
    with open(workdir / regression("FCN", "identity", 40)) as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["stage"] == "regression" and 0.0 <= float(row["accuracy"]) <= 1.0 and row["m"] == "40"


def test_raising_m_plans_only_new_blocks(workdir):
    out = snakemake(workdir, regression("VEC", "o3_pixel", 80), dry=True, extra_config="experiments: {fig2: {m: 80}}")
    jobs = planned(out)
    blocks = sorted(Path(p).relative_to(f"results/kernels/{DATASET}/VEC/{HP}/nt-float32/identity/s0/B40").as_posix()
                    for p in planned_blocks(jobs))
    assert blocks == ["test/0-1.h5", "train/0-1.h5", "train/1-1.h5", "val/0-1.h5"]
    # the new column's blocks go as one pack (kernels.pack_minutes): no pack of the blocks made
    # for m = 40 changes, so none of them is computed again
    assert set(jobs) == {"compute_gram_block_pack", "fit_kernel_regression"}


def test_invariant_transform_plans_no_blocks(workdir):
    jobs = planned(snakemake(workdir, regression("FCN", "o3_shared", 40), dry=True))
    assert not planned_blocks(jobs)
    assert set(jobs) == {"transform_dataset", "audit_symmetry_pair", "fit_kernel_regression"}
    # with the reuse switched off, the transformed data get blocks of their own
    jobs = planned(snakemake(workdir, regression("FCN", "o3_shared", 40), dry=True,
                             extra_config="kernels: {reuse_invariant: false}"))
    assert len(planned_blocks(jobs)) == 3 and "audit_symmetry_pair" not in jobs
    assert all("/o3_shared/s0/" in p for p in planned_blocks(jobs))


def test_packed_blocks_equal_their_own_jobs_and_packing_reruns_nothing(workdir):
    """The run above computed its blocks in packs (kernels.pack_minutes, the default): one
    process a pack, its blocks one after another. Unpacking plans nothing (a speed knob), and
    each block recomputed by a job of its own has the same bytes."""
    target = regression("VEC", "o3_pixel", 40)  # made above, from the untransformed blocks
    folder = workdir / f"results/kernels/{DATASET}/VEC/{HP}/nt-float32/identity/s0/B40"
    members = sorted((workdir / "logs" / folder.relative_to(workdir / "results")).rglob("*-*.log"))
    assert len(members) == 3  # train 0-0, val 0-0, test 0-0: one column, one pack
    pids = {re.search(r"pack member \d of 3, process (\d+)\) \.\.\.", m.read_text()).group(1) for m in members}
    assert len(pids) == 1, pids
    assert "Nothing to be done" in snakemake(workdir, target, dry=True, extra_config="kernels: {pack_minutes: 0}")
    packed = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.h5")}
    assert len(packed) == 3
    out = snakemake(workdir, target, "--forcerun", "compute_gram_block", extra_config="kernels: {pack_minutes: 0}")
    assert "compute_gram_block_pack" not in out and out.count("rule compute_gram_block:") == 3
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.h5")} == packed
