"""Theorem 4.1 on one-channel images: the theorem is about the groups' structure, not C = 3.

Real images (the shipped CIFAR-10 sample averaged over its colour channels, 8x8), the groups
for C = 1 (O(1) = {+1, -1}: a sign for the whole image, a sign per pixel; P(d); O(d)), the
kernels of every architecture in float64 with every backend the audit uses: invariant where
the theorem says (float precision), clearly not elsewhere. Then the workflow's audit
(data files -> audit_pair -> gather -> check_reuse) and `symflow audit` on such data.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from symflow.architectures import ARCHITECTURES, ModelHP
from symflow.audit import ReuseRefused, audit_pair, available_backends, check_reuse, gather, max_rel_diff
from symflow.data import SAMPLE_DIR, load_cifar10, prepare_splits, sample_images, transform_splits
from symflow.groups import transform_images
from symflow.h5io import write_h5
from symflow.kernels import kernel_on

HP = ModelHP(depth=2)  # the theorem holds at any depth; depth 2 keeps the suite quick
SEED = 0  # for one channel, o3_shared draws -1 with this seed: the images do move
GROUPS = ["o3_shared", "o3_pixel", "perm", "o3d"]  # so3_path needs 3 channels
# the theorem (Sec. 4) for C = 1, written out here rather than read from the registry
THEOREM = {
    "FCN": {"o3_shared", "o3_pixel", "perm", "o3d"},  # O(d)
    "LCN": {"o3_shared", "o3_pixel"},  # O(1)^d: a sign per pixel
    "VEC": {"o3_shared", "o3_pixel"},  # O(1)^d at infinite width
    "GAP": {"o3_shared"},  # O(1) x I_d: one sign
    "LAP4": {"o3_shared"},
    "LAP8": {"o3_shared"},
}


def gray(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def images():
    x = gray(sample_images(16, 8))  # 16 real images, (16, 8, 8, 1)
    return x, {g: transform_images(g, SEED, x) for g in GROUPS}


def test_registry_claims_are_the_theorems_for_one_channel():
    for arch, groups in THEOREM.items():
        for g in GROUPS:
            assert ARCHITECTURES.get(arch).claims(g, infinite=True) == (g in groups), (arch, g)


@pytest.mark.parametrize("arch", list(THEOREM))
def test_theorem_4_1_on_one_channel(images, arch):
    x, moved = images
    assert x.shape == (16, 8, 8, 1)
    for backend in available_backends(arch):
        base, used = kernel_on(arch, HP, x, backend=backend, dtype="float64")
        assert used == backend
        for group, x_tau in moved.items():
            k, _ = kernel_on(arch, HP, x_tau, backend=backend, dtype="float64")
            for name in ("nngp", "ntk"):
                diff = max_rel_diff(k[name], base[name])
                if group in THEOREM[arch]:
                    assert diff < 1e-6, f"{arch} {name} ({backend}) should be invariant to {group}: {diff:.3g}"
                else:
                    assert diff > 1e-3, f"{arch} {name} ({backend}) should not be invariant to {group}: {diff:.3g}"


@pytest.fixture(scope="module")
def gray_splits():
    splits = prepare_splits(load_cifar10(SAMPLE_DIR), 8, 2, 4, 8, 0)
    return dataclasses.replace(splits, **{f"x_{p}": gray(getattr(splits, f"x_{p}")) for p in ("train", "val", "test")})


def gray_dataset(tmp_path, splits, transform: str, seed: int):
    """A data file as the data stage writes it, from the real sample made one-channel."""
    arrays = transform_splits(splits, transform, seed)
    assert arrays["x_train"].shape == (8, 8, 8, 1)
    path = tmp_path / f"{transform}.h5"
    write_h5(path, arrays, {"kind": "dataset", "transform": transform, "group": transform, "seed": seed,
                            "resolution": 8})
    return path


def test_workflow_audit_on_one_channel_data(tmp_path, gray_splits):
    plain = gray_dataset(tmp_path, gray_splits, "identity", 0)
    rows = {}
    for arch, transform in [("VEC", "o3_pixel"), ("GAP", "o3_pixel"), ("FCN", "perm"), ("LCN", "perm")]:
        moved = tmp_path / f"{transform}.h5"
        if not moved.exists():
            gray_dataset(tmp_path, gray_splits, transform, SEED)
        rows[arch] = audit_pair(plain, moved, tmp_path / f"{arch}.csv", dataset="gray", arch=arch, hp=HP,
                                transform=transform, seed=SEED, audit_size=4, n_test=2, tolerance=1e-6)
    for arch in ("VEC", "FCN"):
        assert rows[arch]["claimed_invariant"] and rows[arch]["verdict"] == "agrees", rows[arch]
        assert max(rows[arch]["max_rel_diff_nngp"], rows[arch]["max_rel_diff_ntk"]) < 1e-6
    for arch in ("GAP", "LCN"):
        assert not rows[arch]["claimed_invariant"] and rows[arch]["verdict"] == "agrees", rows[arch]
        assert min(rows[arch]["max_rel_diff_nngp"], rows[arch]["max_rel_diff_ntk"]) > 1e-3
    table = gather([tmp_path / f"{a}.csv" for a in rows], tmp_path / "all.csv")
    assert {r["verdict"] for r in table} == {"agrees"}
    assert check_reuse(tmp_path / "VEC.csv", "VEC", "o3_pixel")["verdict"] == "agrees"
    with pytest.raises(ReuseRefused, match="GAP is not invariant to o3_pixel"):
        check_reuse(tmp_path / "GAP.csv", "GAP", "o3_pixel")


def test_symflow_audit_takes_the_channel_count_from_the_data(monkeypatch, capsys):
    """`symflow audit` on one-channel images (its image loader swapped for the gray sample)."""
    import symflow.data
    from symflow.cli import main

    monkeypatch.setattr(symflow.data, "sample_images", lambda n, r, folder=None: gray(sample_images(n, r)))
    args = ["--n", "4", "--depth", "2", "--seed", str(SEED), "--backend", "nt"]
    assert main(["audit", "VEC", "o3_pixel", *args]) == 0
    assert "verdict:  agrees" in capsys.readouterr().out
    assert main(["audit", "GAP", "o3_pixel", *args]) == 0  # not claimed, and not invariant
    out = capsys.readouterr().out
    assert "not claimed invariant" in out and "verdict:  agrees" in out
    assert main(["audit", "VEC", "so3_path-t0.5", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "so3_path needs 3 channels" in err
