"""A plug-in that claims an invariance its architecture does not have: the workflow audits
the claim, refuses the kernel reuse that relies on it, and fails with one line naming the
architecture, the group and the measured difference. The plug-in is a file in the working
directory, named in the config (symflow is not edited)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_config

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "configs" / "tiny.yaml"

# GAP's network under another name, claimed invariant to O(3)^d at infinite width: false
# (global pooling needs products of different pixels, which O(3)^d does not preserve)
PLUGIN = """
from symflow.architectures import ARCHITECTURES, Architecture, build_gap

ARCHITECTURES.register(
    Architecture(
        "GAPFALSE",
        "GAP, wrongly claimed invariant to O(3)^d",
        build_gap,
        invariant_infinite=("o3_pixel",),
        invariant_finite=("o3_shared",),
    )
)
"""
OVERRIDE = """
plugins: [false_claim]
model: {depth: 2}
data: {n_test: 40, resolution: 4}
kernels: {audit_size: 4}
regression: {kernels: [ntk]}
experiments:
  fig2: {architectures: [GAPFALSE], transforms: [identity, o3_pixel], m: 40, seeds: [0]}
  fig3: {transforms: [o3_pixel]}
  figS1: {t: [1.0]}
  figS6: {architectures: [FCN], transforms: [identity], m: [20, 40]}
"""
DATASET = "cifar10-sample.0e454ec3-r4-n200.40.40-split0"
HP = "L2-w2-b0.01-f3"


@pytest.mark.workflow
def test_refuted_claim_fails_the_run(tmp_path):
    copy_config(tmp_path)
    (tmp_path / "override.yaml").write_text(OVERRIDE)
    (tmp_path / "false_claim.py").write_text(PLUGIN)
    regression = f"results/regression/{DATASET}/GAPFALSE/{HP}/engine-float32/o3_pixel/s0/m40/ntk.csv"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(TINY),
        str(tmp_path / "override.yaml"),
        "--cores",
        "2",
        "--show-failed-logs",
        "--",
        regression,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    # the audit of the pair ran and refuted the claim
    with open(tmp_path / f"results/audit/{DATASET}/GAPFALSE/{HP}/o3_pixel/s0.csv") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["claimed_invariant"] == "True" and row["verdict"] == "refutes"
    worst = f"{max(float(row['max_rel_diff_nngp']), float(row['max_rel_diff_ntk'])):.3g}"
    assert float(worst) > 1e-3
    # the regression that would reuse the untransformed kernel fails with one line naming the
    # architecture, the group and the measured difference (in its log, shown by --show-failed-logs);
    # the gathered audit table fails the same way (tests/test_symmetry.py)
    log = tmp_path / f"logs/regression/{DATASET}/GAPFALSE/{HP}/engine-float32/o3_pixel/s0/m40/ntk.log"
    text = log.read_text()
    lines = [ln for ln in text.splitlines() if "ReuseRefused" in ln]
    assert lines and "GAPFALSE" in lines[-1] and "o3_pixel" in lines[-1] and worst in lines[-1], text[-2000:]
    assert "so GAPFALSE is not invariant to o3_pixel" in out
    assert not (tmp_path / regression).exists()
