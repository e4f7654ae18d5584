"""Theorem 4.1 at infinite width, on random inputs in float64: every architecture's NNGP and
NTK are invariant to the groups the theorem names and clearly not to the larger ones; and
LCN_inf = VEC_inf. Also the audit functions on small data files."""

from __future__ import annotations

import numpy as np
import pytest

from symflow.architectures import ARCHITECTURES, ModelHP
from symflow.audit import (
    ClaimRefuted,
    ReuseRefused,
    audit_equality,
    audit_pair,
    check_reuse,
    gather,
    max_rel_diff,
    read_rows,
)
from symflow.groups import transform_images
from symflow.kernels import precision

from kernel_helpers import write_data_file

HP = ModelHP(depth=2)  # the theorem holds at any depth; depth 2 keeps the suite quick
GROUPS = ["o3_shared", "o3_pixel", "so3_path-t0.5", "perm", "o3d"]
# the theorem (Sec. 4), written out here rather than read from the registry
THEOREM = {
    "FCN": {"o3_shared", "o3_pixel", "so3_path-t0.5", "perm", "o3d"},  # O(3d)
    "LCN": {"o3_shared", "o3_pixel", "so3_path-t0.5"},  # O(3)^d
    "VEC": {"o3_shared", "o3_pixel", "so3_path-t0.5"},  # O(3)^d at infinite width
    "GAP": {"o3_shared"},  # O(3) x I_d
    "LAP4": {"o3_shared"},
    "LAP8": {"o3_shared"},
}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 8, 8, 3))
    return [x] + [transform_images(g, 11, x) for g in GROUPS]


def test_registry_claims_are_the_theorems():
    for arch, groups in THEOREM.items():
        for g in GROUPS:
            assert ARCHITECTURES.get(arch).claims(g.split("-t")[0], infinite=True) == (g in groups), (arch, g)


@pytest.mark.parametrize("arch", list(THEOREM))
def test_theorem_4_1(images, arch):
    kernel_fn = ARCHITECTURES.get(arch).stax(HP)[2]
    x = np.concatenate(images)  # one call, one shape: [x, tau_1 x, ..., tau_5 x]
    with precision("float64"):
        k = kernel_fn(x, None, ("nngp", "ntk"))
    n = len(images[0])
    for name in ("nngp", "ntk"):
        mat = np.asarray(getattr(k, name))
        base = mat[:n, :n]
        for g, group in enumerate(GROUPS, start=1):
            moved = mat[g * n : (g + 1) * n, g * n : (g + 1) * n]
            diff = max_rel_diff(moved, base)
            if group in THEOREM[arch]:
                # float64 rounding, amplified on the diagonal: arccos(1 - d) ~ sqrt(2 d) (~1e-8)
                assert diff < 1e-6, f"{arch} {name} should be invariant to {group}: {diff:.3g}"
            else:
                assert diff > 1e-3, f"{arch} {name} should not be invariant to {group}: {diff:.3g}"


def test_lcn_equals_vec_at_infinite_width(images):
    x = np.concatenate(images[:2])
    out = {}
    for arch in ("LCN", "VEC"):
        with precision("float64"):
            out[arch] = ARCHITECTURES.get(arch).stax(HP)[2](x, None, ("nngp", "ntk"))
    for name in ("nngp", "ntk"):
        assert max_rel_diff(getattr(out["LCN"], name), getattr(out["VEC"], name)) < 1e-12


def test_audit_rows_and_reuse_check(tmp_path):
    plain = write_data_file(tmp_path / "identity.h5", n_train=4, n_test=2, res=4)
    moved = write_data_file(tmp_path / "o3_pixel.h5", n_train=4, n_test=2, res=4, transform="o3_pixel", seed=3)
    rows = {}
    for arch in ("VEC", "GAP"):
        rows[arch] = audit_pair(
            plain,
            moved,
            tmp_path / f"{arch}.csv",
            dataset="d",
            arch=arch,
            hp=HP,
            transform="o3_pixel",
            seed=3,
            audit_size=3,
            n_test=2,
            tolerance=1e-6,
        )
    assert rows["VEC"]["claimed_invariant"] and rows["VEC"]["verdict"] == "agrees"
    assert rows["VEC"]["max_rel_diff_ntk"] < 1e-6
    assert not rows["GAP"]["claimed_invariant"] and rows["GAP"]["verdict"] == "agrees"
    assert rows["GAP"]["max_rel_diff_ntk"] > 1e-3
    eq = audit_equality(
        plain,
        tmp_path / "eq.csv",
        dataset="d",
        arch_a="LCN",
        arch_b="VEC",
        hp=HP,
        audit_size=3,
        n_test=2,
        tolerance=1e-6,
    )
    assert eq["architecture"] == "LCN=VEC" and eq["verdict"] == "agrees"
    table = gather([tmp_path / "VEC.csv", tmp_path / "GAP.csv", tmp_path / "eq.csv"], tmp_path / "all.csv")
    assert [r["architecture"] for r in table] == ["GAP", "LCN=VEC", "VEC"]
    assert check_reuse(tmp_path / "VEC.csv", "VEC", "o3_pixel")["verdict"] == "agrees"
    # a refuting audit stops a reuse with one line naming the architecture, group and difference
    row = read_rows([tmp_path / "GAP.csv"])[0]
    row.update(claimed_invariant="True", verdict="refutes")
    from symflow.audit import write_rows

    write_rows(tmp_path / "bad.csv", [row])
    with pytest.raises(ReuseRefused) as err:
        check_reuse(tmp_path / "bad.csv", "GAP", "o3_pixel")
    msg = str(err.value)
    assert "\n" not in msg and "GAP" in msg and "o3_pixel" in msg and f"{float(row['max_rel_diff_ntk']):.3g}" in msg
    # and the gathered table refuses a refuted claim the same way (unless asked to keep it)
    with pytest.raises(ClaimRefuted) as err:
        gather([tmp_path / "VEC.csv", tmp_path / "bad.csv"], tmp_path / "all2.csv")
    msg = str(err.value)
    assert "\n" not in msg and "GAP is invariant to o3_pixel" in msg and f"{float(row['max_rel_diff_ntk']):.3g}" in msg
    assert not (tmp_path / "all2.csv").exists()
    assert len(gather([tmp_path / "bad.csv"], tmp_path / "all2.csv", fail_on_refute=False)) == 1
