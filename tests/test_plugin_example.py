"""The worked plug-in example (examples/channel_symmetry.py, docs/extending.md): its registry
entries, the symmetry audit of its group and architecture on real CIFAR-10 sample images,
and the workflow's plan for it (the config names the plug-in; symflow is not edited)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_config, planned, planned_blocks

import examples.channel_symmetry  # noqa: F401  (registers channel_perm and GAP1x1)
from symflow.architectures import ARCHITECTURES, ModelHP
from symflow.audit import audit_arrays
from symflow.data import sample_images
from symflow.groups import GROUPS, sample_element, supergroups, transform_images

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "examples" / "channel_symmetry.yaml"
HP = ModelHP(depth=2)  # the invariances hold at any depth; 2 keeps it quick
TOL = 1e-6


def test_registry_entries():
    group = GROUPS.get("channel_perm")
    assert group.random and not group.trivial and not group.path
    assert {"o3_shared", "perm", "o3_pixel", "o3d"} <= supergroups("channel_perm")
    arch = ARCHITECTURES.get("GAP1x1")
    assert arch.kernel_cost == "pixel_pairs" and arch.layers == "conv"
    # claimed: channel_perm and o3_shared (GAP's symmetry); not the larger groups
    for name, claimed in [("channel_perm", True), ("o3_shared", True), ("o3_pixel", False), ("perm", False)]:
        assert arch.claims(name) is claimed and arch.claims(name, infinite=False) is claimed, name
    # every paper architecture is claimed invariant to O(3) x I_d, hence to channel_perm
    for name in ("FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8"):
        assert ARCHITECTURES.get(name).claims("channel_perm"), name


def test_channel_perm_moves_the_channels_and_nothing_else():
    for seed in range(20):  # never the identity (a uniform draw from P(3) is, one time in six)
        perm = sample_element("channel_perm", seed, (4, 4, 3))["perm"]
        assert sorted(perm) == [0, 1, 2] and list(perm) != [0, 1, 2], seed
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3))
    y = transform_images("channel_perm", 0, x)
    perm = sample_element("channel_perm", 0, x.shape[1:])["perm"]
    np.testing.assert_array_equal(y, x[..., perm])
    np.testing.assert_array_equal(transform_images("channel_perm", 0, x), y)  # a function of the seed


@pytest.fixture(scope="module")
def images(sample_dir):
    """Six real images from the shipped sample, standardised, at 4x4."""
    return sample_images(6, 4, sample_dir)


# (architecture, transform, invariant?) on real images; the paper's and the plug-in's
CASES = [
    ("GAP", "channel_perm", True),
    ("GAP1x1", "channel_perm", True),
    ("VEC", "channel_perm", True),
    ("FCN", "channel_perm", True),
    ("GAP1x1", "o3_shared", True),
    ("GAP1x1", "o3_pixel", False),
    ("GAP1x1", "perm", False),
    ("GAP", "o3_pixel", False),
    ("VEC", "perm", False),
]


@pytest.mark.parametrize("arch,transform,invariant", CASES)
def test_audit_on_real_images(images, arch, transform, invariant):
    from symflow.kernels import precision

    x_tau = transform_images(transform, 0, images)
    with precision("float64"):
        row = audit_arrays(arch, transform, images, x_tau, hp=HP, tolerance=TOL, backends=["nt"])
    worst = max(row["max_rel_diff_nngp"], row["max_rel_diff_ntk"])
    assert row["claimed_invariant"] is invariant and row["verdict"] == "agrees", row
    # float64 rounding, amplified on the diagonal by the arc-cosine (arccos(1 - d) ~ sqrt(2 d)): ~1e-8
    assert (worst < TOL) if invariant else (worst > 1e-3), (worst, row)


def test_gap1x1_is_not_gap(images):
    """The plug-in's kernel is its own: the 1x1 first layer changes it (same depth, same data)."""
    from symflow.audit import compare_kernels
    from symflow.kernels import precision

    with precision("float64"):
        diffs = compare_kernels("GAP1x1", images, "GAP", images, HP)
    assert diffs["max_rel_diff_ntk"] > 1e-3


def test_dry_run_plans_audits_for_the_plugin_names(tmp_path):
    copy_config(tmp_path)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(EXAMPLE_CONFIG),
        "--cores",
        "2",
        "-n",
        "--",
        "results/symmetry_audit.csv",
        "results/fig2.pdf",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # where `examples.channel_symmetry` is found
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = planned(proc.stdout + proc.stderr)
    audits = {tuple(p.split("/")[3:6:2]) for p in jobs["audit_symmetry_pair"]}  # (arch, transform)
    for arch in ("FCN", "VEC", "GAP", "GAP1x1"):
        for transform in ("identity", "channel_perm", "o3_pixel"):
            assert (arch, transform) in audits, (arch, transform)
    # channel_perm is reused from the untransformed blocks (after its audit); o3_pixel is not for GAP1x1
    blocks = planned_blocks(jobs)
    assert not any("/channel_perm/" in p for p in blocks)
    assert any("/GAP1x1/" in p and "/o3_pixel/" in p for p in blocks)
    assert any("/GAP1x1/" in p and "/identity/" in p for p in blocks)
    assert "results/fig2.pdf" in jobs["plot_figure"]
