"""Packed kernel blocks (issue 29): several blocks of one data file computed one after another
by one process (symflow.kernels.compute_blocks, a pack's job) write the same bytes as each
block computed by its own process (compute_block, a block's own job)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_helpers import write_data_file
from symflow.architectures import ModelHP
from symflow.jobs import Block
from symflow.kernels import compute_blocks

HP = ModelHP(depth=2)
REPO = Path(__file__).resolve().parent.parent
# one column (j = 1, B = 2) of a data file with 6 train, 3 val and 5 test images: the train
# blocks 0-1 and 1-1, the val rows 0-1 (full) and 1-1 (one row), the test rows 0..2 (the last partial)
COLUMN = [("train", 0, 1), ("train", 1, 1), ("val", 0, 1), ("val", 1, 1), ("test", 0, 1), ("test", 2, 1)]
SETTINGS = dict(block_size=2, backend="engine", dtype="float32", batch_rows=2)

ALONE = """
import sys
from symflow.architectures import ModelHP
from symflow.kernels import compute_block
data, out, split, i, j = sys.argv[1:6]
for arch in sys.argv[6:]:  # one block of each architecture, as its own job: nothing compiled for it before
    compute_block(data, f"{out}/{arch}/{split}/{i}-{j}.h5", arch=arch, hp=ModelHP(depth=2), split=split, i=int(i),
                  j=int(j), block_size=2, backend="engine", dtype="float32", batch_rows=2)
"""
ARCHS = ("FCN", "GAP")


def test_a_pack_writes_the_bytes_of_blocks_computed_alone(tmp_path):
    data = write_data_file(tmp_path / "data.h5")
    for split, i, j in COLUMN:  # a fresh process per block
        cmd = [sys.executable, "-c", ALONE, str(data), str(tmp_path / "alone"), split, str(i), str(j), *ARCHS]
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"})
    for arch in ARCHS:  # a pack of the column in this process
        logs = [logging.getLogger(f"test.pack.{k}") for k in range(len(COLUMN))]
        compute_blocks(data, [(tmp_path / "pack" / arch / s / f"{i}-{j}.h5", s, i, j) for s, i, j in COLUMN],
                       logs=logs, arch=arch, hp=HP, **SETTINGS)
        for split, i, j in COLUMN:
            name = f"{arch}/{split}/{i}-{j}.h5"
            assert (tmp_path / "pack" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes(), name


def test_each_member_logs_its_start_end_and_process(tmp_path, caplog):
    data = write_data_file(tmp_path / "data.h5")
    logs = [logging.getLogger(f"test.members.{k}") for k in range(2)]
    with caplog.at_level(logging.INFO):
        compute_blocks(data, [(tmp_path / "a.h5", "train", 0, 0), (tmp_path / "b.h5", "val", 1, 0)], logs=logs,
                       arch="FCN", hp=HP, **SETTINGS)
    for k, log in enumerate(logs):
        lines = [r.getMessage() for r in caplog.records if r.name == log.name]
        assert re.search(rf"pack member {k + 1} of 2, process {os.getpid()}\) \.\.\.$", lines[0]), lines
        assert re.search(r"done in [0-9.]+ s$", lines[-1]), lines
    with pytest.raises(ValueError, match="2 blocks but 1 logs"):
        compute_blocks(data, [(tmp_path / "a.h5", "train", 0, 0)] * 2, logs=logs[:1], arch="FCN", hp=HP, **SETTINGS)


def test_a_block_is_read_off_its_path():
    block = Block("cifar10-sample.0e454ec3-r8-n200.40.80-split0", "VEC", "L8-w2-b0.01-f3", "engine-float32",
                  "so3_path-t0.5", 0, 40, "test", 1, 3)
    assert Block.from_output(block.output()) == block
    assert Block.from_output("/work/run/" + block.output()) == block
    for bad in ("results/kernels/x/VEC/h/k/identity/s0/B40/train/0-1.csv",
                "results/regression/x/VEC/h/k/identity/s0/B40/train/0-1.h5",
                "results/kernels/x/VEC/h/k/identity/s0/B40/train/01-1.h5x"):
        with pytest.raises(ValueError, match="not a kernel block's path"):
            Block.from_output(bad)
