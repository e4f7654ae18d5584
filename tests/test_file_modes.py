"""Outputs get the mode the user's umask gives a new file, as any other program's would
(issue 29): every writer goes through symflow.h5io.atomic_path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from symflow.h5io import atomic_path, read_h5, write_h5
from symflow.train.checkpoints import Checkpoint


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_umask_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        h5 = tmp_path / "a" / "block.h5"
        write_h5(h5, {"x": np.arange(3.0)}, {"kind": "test"})
        csv = tmp_path / "a" / "table.csv"
        with atomic_path(csv, suffix=".csv") as tmp:
            tmp.write_text("a,b\n1,2\n")
        ckpt = tmp_path / "c" / "state.msgpack"
        Checkpoint(ckpt, "fp").save({"step": np.int64(3)})
        h5.chmod(0o600)  # an older private file is replaced by one with the umask's mode
        write_h5(h5, {"x": np.arange(4.0)}, {"kind": "test"})
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    assert {p.name: oct(_mode(p)) for p in (h5, csv, ckpt)} == {p.name: oct(want) for p in (h5, csv, ckpt)}
    assert _mode(h5.parent) == 0o777 & ~umask
    assert read_h5(h5)[0]["x"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert not [p for p in tmp_path.rglob(".*.tmp*")]  # no temporary left behind
