"""Corrupt artifacts: a truncated or bit-flipped cached Gram block, dataset file, regression
or training output, or training checkpoint is never used: reading fails with an error
naming the file, `symflow verify-cache` lists it, and after `symflow verify-cache --remove`
a rerun of snakemake regenerates it, equal to the uninterrupted run's.

Already elsewhere: a corrupt or foreign checkpoint is ignored by the training loop
(tests/test_train_loop.py), a flipped or truncated dataset file raises on load
(tests/test_data.py), verify-cache on a synthetic folder (tests/test_cli.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from faults import workflow_runs as W
from symflow.cli import main as symflow_main
from symflow.h5io import CorruptArtifactError, read_h5
from symflow.train import Checkpoint, checkpoint_payload


def flip_data_byte(path: Path) -> None:
    """Flip one bit inside the values of the file's largest dataset (HDF5) or payload (checkpoint)."""
    raw = bytearray(path.read_bytes())
    if path.suffix == ".h5":
        with h5py.File(path, "r") as f:
            name = max(f, key=lambda k: f[k].size)
            offset, size = f[name].id.get_offset(), f[name].id.get_storage_size()
        pos = offset + size // 2
    else:
        pos = len(raw) - 10
    raw[pos] ^= 0x04
    keep = path.stat()
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(keep.st_atime_ns, keep.st_mtime_ns))  # silent: the mtime says nothing happened


def truncate_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def truncate_empty(path: Path) -> None:
    path.write_bytes(b"")


def garbage_head(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[:16] = b"\x00garbage-header\x00"
    path.write_bytes(bytes(raw))


CORRUPTIONS = [flip_data_byte, truncate_half, truncate_empty, garbage_head]
ARTIFACTS = {
    "dataset": W.DATA,
    "gram block": f"{W.BLOCKS}/train/0-0.h5",
    "regression": f"{W.REGRESSION}/ntk.h5",
    "sgd predictions": f"{W.SGD}/predictions.h5",
    "checkpoint": W.CHECKPOINT,
}


def _checkpoint(path: Path) -> None:
    Checkpoint(path, "run").save({"step": 20, "params": np.arange(500.0), "curve": np.zeros((2, 10))})


@pytest.mark.workflow  # (its `reference` fixture runs the workflow)
def test_every_corruption_is_refused_with_the_file_name(reference, tmp_path, capsys):
    """4 corruptions x 5 kinds of artifact: the reader raises naming the file; verify-cache lists all 20."""
    ref_work, _ = reference
    bad = []
    for kind, rel in ARTIFACTS.items():
        for corrupt in CORRUPTIONS:
            path = tmp_path / corrupt.__name__ / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "checkpoint":
                _checkpoint(path)
                checkpoint_payload(path)  # whole: reads
            else:
                shutil.copy2(ref_work / rel, path)
            corrupt(path)
            if kind == "checkpoint":
                with pytest.raises(ValueError, match=f"{path}: .*(checksum mismatch|not a symflow checkpoint)"):
                    checkpoint_payload(path)
            else:
                with pytest.raises(CorruptArtifactError, match=f"{path}: .*(checksum mismatch|cannot be read)"):
                    read_h5(path)
            bad.append(path)
    capsys.readouterr()
    assert symflow_main(["verify-cache", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert all(f"corrupt: {p}: " in out for p in bad) and f"{len(bad)} corrupt" in out
    assert symflow_main(["verify-cache", "--remove", str(tmp_path)]) == 0
    assert not any(p.exists() for p in bad)


@pytest.mark.slow
def test_corrupt_artifacts_are_regenerated(reference, second_run, tmp_path):
    """A flipped Gram block, a truncated dataset file and a flipped checkpoint, end to end."""
    _, ref = reference
    work = tmp_path / "wf"
    shutil.copytree(second_run[0], work, symlinks=True)  # a finished run, its metadata included
    block = work / W.BLOCKS / "train" / "0-0.h5"

    # a flipped block that snakemake reruns from (newer than the regression): the job fails naming it
    flip_data_byte(block)
    os.utime(block)
    proc = W.snakemake(work, "--show-failed-logs", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"{W.BLOCKS}/train/0-0.h5: content checksum mismatch" in out, out[-3000:]

    # with a truncated dataset file too: verify-cache names both, --remove deletes them
    truncate_half(work / W.DATA)
    check = W.symflow(work, "verify-cache")
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"corrupt: {W.DATA}: cannot be read as HDF5" in check.stdout
    assert f"corrupt: {W.BLOCKS}/train/0-0.h5: content checksum mismatch" in check.stdout
    assert W.symflow(work, "verify-cache", "--remove").returncode == 0
    assert not (work / W.DATA).exists() and not block.exists()

    # the rerun regenerates them; training is killed after its checkpoint at step 40
    proc = W.snakemake(work, fault="train.eval:2", check=False)
    assert proc.returncode != 0 and W.checkpoint_step(work / W.CHECKPOINT) == 40
    for rel in (W.DATA, f"{W.BLOCKS}/train/0-0.h5", f"{W.REGRESSION}/ntk.csv"):
        assert W.content(work / rel) == ref[rel]

    # a flipped checkpoint: verify-cache names it; the training job ignores it and starts from step 0
    flip_data_byte(work / W.CHECKPOINT)
    check = W.symflow(work, "verify-cache")
    assert check.returncode == 1 and f"corrupt: {W.CHECKPOINT}: checkpoint checksum mismatch" in check.stdout
    W.snakemake(work)
    log = (work / W.TRAIN_LOG).read_text()
    assert "checksum mismatch" in log and "training starts from step 0" in log and "resumed from" not in log
    W.assert_same_outputs(W.snapshot(work), ref)
    assert W.symflow(work, "verify-cache").returncode == 0
