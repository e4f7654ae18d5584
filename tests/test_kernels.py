"""Gram blocks: index math, assembly equals kernel_fn on the whole set, determinism, backends."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from symflow.architectures import ARCHITECTURES, ModelHP
from symflow.h5io import read_h5
from symflow.kernels import (
    assemble,
    block_ranges,
    blocks_for,
    check_m,
    column_blocks,
    compute_block,
    precision,
)

from kernel_helpers import write_data_file

HP = ModelHP(depth=2)  # the block machinery does not depend on depth; keep compilation short


def test_block_index_math():
    assert blocks_for(4, 2, n_val=3, n_test=5) == [
        ("train", 0, 0), ("train", 0, 1), ("train", 1, 1),
        ("val", 0, 0), ("val", 0, 1), ("val", 1, 0), ("val", 1, 1),
        ("test", 0, 0), ("test", 0, 1), ("test", 1, 0), ("test", 1, 1), ("test", 2, 0), ("test", 2, 1),
    ]
    # raising m only adds blocks
    for small, large in ((2, 4), (4, 6), (1, 6), (3, 4)):
        bs = 2 if small != 3 else 4
        assert set(blocks_for(small, bs, 3, 5)) <= set(blocks_for(large, bs, 3, 5))
    # an m below B is cut from the first block
    assert blocks_for(3, 4, 3, 5) == [("train", 0, 0), ("val", 0, 0), ("test", 0, 0), ("test", 1, 0)]
    assert column_blocks(6, 2) == 3 and column_blocks(1, 500) == 1
    assert block_ranges("test", 2, 1, 2, n_rows=5, n_train=6) == ((4, 5), (2, 4))
    assert block_ranges("train", 0, 0, 4, n_rows=3, n_train=3) == ((0, 3), (0, 3))


def test_block_index_errors():
    with pytest.raises(ValueError, match="not a multiple"):
        check_m(750, 500)
    with pytest.raises(ValueError, match="i <= j"):
        block_ranges("train", 1, 0, 2, 6, 6)
    with pytest.raises(ValueError, match="starts past"):
        block_ranges("val", 2, 0, 2, 3, 6)


@pytest.fixture
def data_file(tmp_path):
    return write_data_file(tmp_path / "data.h5")


def _compute(data_path, out_dir, arch, m, bs, dtype="float64", batch_rows=2):
    files = []
    for split, i, j in blocks_for(m, bs, 3, 5):
        path = out_dir / arch / split / f"{i}-{j}.h5"
        if not path.exists():
            compute_block(data_path, path, arch=arch, hp=HP, split=split, i=i, j=j, block_size=bs,
                          dtype=dtype, batch_rows=batch_rows)
        files.append(path)
    return files


def _reference(data_path, arch, m, dtype="float64"):
    """kernel_fn on the whole set in one call (one shape: op-by-op jax compiles per shape)."""
    arrays, _ = read_h5(data_path)
    kernel_fn = ARCHITECTURES.get(arch).stax(HP)[2]
    x = np.concatenate([arrays["x_train"], arrays["x_val"], arrays["x_test"]]).astype(dtype)
    with precision(dtype):
        k = kernel_fn(x, None, ("nngp", "ntk"))
    rows = {"train": np.s_[:m], "val": np.s_[6:9], "test": np.s_[9:14]}
    return {split: {name: np.asarray(getattr(k, name))[r, :m] for name in ("nngp", "ntk")}
            for split, r in rows.items()}


@pytest.mark.parametrize("arch", ["GAP", "VEC"])
def test_assembled_blocks_equal_kernel_fn(tmp_path, data_file, arch):
    full = _reference(data_file, arch, 6)
    for m, bs in ((4, 2), (6, 2), (3, 4)):  # m = 6 reuses m = 4's blocks; m < B cuts block 0-0
        files = _compute(data_file, tmp_path / f"B{bs}", arch, m, bs)
        gram = assemble(files, m)
        want = {split: {k: v[:, :m] if split != "train" else v[:m, :m] for k, v in d.items()}
                for split, d in full.items()}
        for kernel in ("nngp", "ntk"):
            assert gram[kernel]["train"].shape == (m, m)
            np.testing.assert_array_equal(gram[kernel]["train"], gram[kernel]["train"].T)
            for split in ("train", "val", "test"):
                # 1e-7: kernel_fn(x, None) treats the diagonal as exact self-pairs, blocks (as
                # nt.batch does) compute it as cross pairs, whose arc-cosine at c ~ 1 loses sqrt(eps)
                np.testing.assert_allclose(gram[kernel][split], want[split][kernel], rtol=1e-7,
                                           err_msg=f"{arch} m={m} B={bs} {split} {kernel}")
    assert gram.provenance["architecture"] == arch and gram.provenance["backends_used"] == ["nt"]


def test_float32_blocks_and_provenance(tmp_path, data_file):
    path = tmp_path / "b.h5"
    attrs = compute_block(data_file, path, arch="FCN", hp=HP, split="test", i=1, j=0, block_size=4,
                          dtype="float32", batch_rows=3)
    arrays, stored = read_h5(path)
    assert arrays["ntk"].dtype == np.float32 and arrays["ntk"].shape == (1, 4)  # rows 4..5 of 5
    for key in ("architecture", "hp_tag", "backend_used", "dtype", "transform", "seed", "split", "i", "j",
                "block_size", "row_start", "row_stop", "col_start", "col_stop", "data_checksum", "versions"):
        assert key in stored, key
    assert (stored["row_start"], stored["row_stop"], stored["col_start"], stored["col_stop"]) == (4, 5, 0, 4)
    assert stored["data_checksum"] == read_h5(data_file)[1]["content_sha256"]
    assert attrs["hp_tag"] == HP.tag and stored["model_hp"]["depth"] == 2
    ref = _reference(data_file, "FCN", 4)["test"]["ntk"][4:5]  # float64
    np.testing.assert_allclose(arrays["ntk"], ref, rtol=1e-5)


def test_block_written_twice_is_identical(tmp_path, data_file):
    a, b = tmp_path / "a" / "0-1.h5", tmp_path / "b" / "0-1.h5"
    for path in (a, b):
        compute_block(data_file, path, arch="GAP", hp=HP, split="train", i=0, j=1, block_size=2,
                      dtype="float32", batch_rows=2)
    assert a.read_bytes() == b.read_bytes()


def test_engine_backend_falls_back_to_nt(tmp_path, data_file, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "symflow.engine", None)  # as if the module were missing
    with caplog.at_level(logging.WARNING):
        attrs = compute_block(data_file, tmp_path / "e.h5", arch="FCN", hp=HP, split="val", i=0, j=0,
                              block_size=2, backend="engine", dtype="float64", batch_rows=2)
    assert attrs["backend"] == "engine" and attrs["backend_used"] == "nt"
    assert "falling back to neural-tangents" in caplog.text


def test_engine_backend_is_used_where_it_supports(tmp_path, data_file, monkeypatch):
    import types

    fake = types.ModuleType("symflow.engine")
    fake.supports = lambda arch: arch == "FCN"
    fake.kernel_fn = lambda arch, hp, pair_batch=None: (
        lambda x1, x2: (np.ones((len(x1), len(x2))), 2 * np.ones((len(x1), len(x2)))))
    monkeypatch.setitem(sys.modules, "symflow.engine", fake)
    attrs = compute_block(data_file, tmp_path / "e.h5", arch="FCN", hp=HP, split="val", i=0, j=0,
                          block_size=2, backend="engine", dtype="float64", batch_rows=2)
    assert attrs["backend_used"] == "engine"
    assert read_h5(tmp_path / "e.h5")[0]["ntk"].tolist() == [[2.0, 2.0], [2.0, 2.0]]
    attrs = compute_block(data_file, tmp_path / "v.h5", arch="VEC", hp=HP, split="val", i=0, j=0,
                          block_size=2, backend="engine", dtype="float64", batch_rows=2)
    assert attrs["backend_used"] == "nt"


@pytest.mark.parametrize("recursion", [None, "spatial"])
def test_plugin_architecture_takes_the_engine_its_registration_names(tmp_path, data_file, monkeypatch, caplog,
                                                                     recursion):
    """A plug-in registered without an engine recursion gets neural-tangents where the config
    asks for the engine, and its job's log says why; one that names a recursion gets the
    engine, with GAP's values (the network is GAP's). Registered for this test only."""
    from symflow.architectures import Architecture, build_gap

    plugin = Architecture("GAPPLUG", "GAP's network, as a plug-in", build_gap, engine_recursion=recursion)
    monkeypatch.setitem(ARCHITECTURES._entries, "GAPPLUG", plugin)
    kw = dict(hp=HP, split="val", i=0, j=0, block_size=2, backend="engine", dtype="float64", batch_rows=2)
    with caplog.at_level(logging.INFO):
        attrs = compute_block(data_file, tmp_path / "p.h5", arch="GAPPLUG", **kw)
    gap = compute_block(data_file, tmp_path / "g.h5", arch="GAP", **kw)
    assert gap["backend_used"] == "engine"
    expected = "nt" if recursion is None else "engine"
    assert attrs["backend_used"] == expected
    cannot = "symflow's engine cannot compute GAPPLUG (its registration names no engine_recursion); " \
             "neural-tangents computes it"
    assert (cannot in caplog.text) == (recursion is None), caplog.text
    got, want = read_h5(tmp_path / "p.h5")[0], read_h5(tmp_path / "g.h5")[0]
    for name in ("nngp", "ntk"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10)


def test_assemble_refuses_missing_or_mixed_blocks(tmp_path, data_file):
    files = _compute(data_file, tmp_path, "FCN", 4, 2)
    with pytest.raises(ValueError, match="train entry"):
        assemble([f for f in files if not str(f).endswith("train/1-1.h5")], 4)
    other = compute_block(data_file, tmp_path / "x.h5", arch="VEC", hp=HP, split="train", i=1, j=1,
                          block_size=2, dtype="float64", batch_rows=2)
    assert other["architecture"] == "VEC"
    with pytest.raises(ValueError, match="architecture"):
        assemble([f for f in files if not str(f).endswith("train/1-1.h5")] + [tmp_path / "x.h5"], 4)
