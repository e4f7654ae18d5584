"""Killed jobs: SIGKILL the data, kernel-block (a pack of blocks), eta0, regression and training jobs at seeded
random points, mid-write included, and the whole snakemake process group at random times;
rerun; the workflow completes with outputs identical to an uninterrupted run's.

Exact kill points come from symflow.faults (SYMFLOW_FAULT_KILL=label:n[:substring]): the
job kills itself at the n-th hit of a labelled point, e.g. after the n-th dataset of an
HDF5 file reached the disk, so a kill lands mid-write deterministically; n is drawn from
a seeded RNG (SEED; set SYMFLOW_FAULT_SEED to explore others). Each round kills the jobs
the rounds before left to do, so the whole chain costs about one run plus the redone
work. After every round no file at a final path is partial (each one reads back, its
checksum verified, equal to the reference run's), and a training job resumes from its
last checkpoint (the step it resumed from is read from its log).

The in-process resume (same numbers after an interruption) and a randomly timed SIGKILL
of a training process are in tests/test_train_loop.py and tests/test_sgd_workflow.py.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from faults import workflow_runs as W

SEED = int(os.environ.get("SYMFLOW_FAULT_SEED", "8"))
pytestmark = pytest.mark.slow


def _no_partial_outputs(work: Path, ref: dict) -> list[str]:
    """Every file at a final path reads back and equals the reference run's; returns them."""
    files = W.final_files(work)
    for rel in files:
        assert rel in ref, f"unexpected output {rel}"
        assert W.content(work / rel) == ref[rel], f"{rel}: a file at a final path differs from the reference"
    return files


def _resumed_from(work: Path) -> int | None:
    """The step the last training attempt resumed from (its log; snakemake clears a job's log
    before each attempt), or None if it started from step 0."""
    text = (work / W.TRAIN_LOG).read_text()
    found = re.findall(r"resumed from checkpoint \S+ at step (\d+)", text)
    return int(found[-1]) if found else None


def _kill_group_later(work: Path, wait_for: str, delay: float) -> subprocess.CompletedProcess:
    """Start snakemake in its own process group; once `wait_for` exists (a job has started),
    sleep `delay` s and SIGKILL the whole group (snakemake and its jobs)."""
    proc = subprocess.Popen(W.snakemake_cmd(work), cwd=work, env=W.env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.time() + 300
    while not (work / wait_for).exists() and proc.poll() is None:
        assert time.time() < deadline, "the job never started"
        time.sleep(0.05)
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def test_killed_jobs_rerun_to_the_same_outputs(reference, tmp_path):
    _, ref = reference
    rng = random.Random(SEED)
    n_data = len(ref[W.DATA]["arrays"])
    n_block = len(ref[f"{W.BLOCKS}/val/0-0.h5"]["arrays"])
    n_regression = len(ref[f"{W.REGRESSION}/ntk.h5"]["arrays"])
    work = W.new_workdir(tmp_path / "wf")
    kills, times = [], {}

    def round_(name: str, faults: list[str]) -> subprocess.CompletedProcess:
        start = time.perf_counter()
        proc = W.snakemake(work, fault=",".join(faults), check=False)
        times[name] = round(time.perf_counter() - start, 1)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, f"{name}: no job was killed by {faults}:\n{out[-3000:]}"
        assert "Error in rule" in out, f"{name}: snakemake did not report the killed job:\n{out[-3000:]}"
        kills.extend(faults)
        _no_partial_outputs(work, ref)
        return proc

    # 1, 2: the data job halfway through its HDF5 file, then with the file complete but not renamed
    for name, fault in (
        ("data mid-write", f"h5.dataset:{rng.randint(1, n_data)}:results/data/"),
        ("data before rename", "atomic.rename:1:results/data/"),
    ):
        round_(name, [fault])
        assert not (work / W.DATA).exists()
        tmp = [p for p in W.temporaries(work) if p.startswith(f"results/data/{W.DATASET}/identity/.s0.h5.")]
        assert tmp, f"{name}: the kill did not land mid-write"

    # 3: the Gram blocks' pack (train 0-0, val 0-0, test 0-0 in one process, kernels.pack_minutes)
    # mid-write of its second block, its first one complete and renamed (undone: snakemake
    # removes the failed job's outputs), and eta0's JSON before its rename
    round_("block pack mid-write and eta0", [f"h5.dataset:{rng.randint(1, n_block)}:/val/", "atomic.rename:1:eta0/"])
    assert (work / W.DATA).exists()
    assert not any((work / W.BLOCKS / s / "0-0.h5").exists() for s in ("train", "val", "test"))
    assert not (work / W.ETA0).exists()
    assert any(p.startswith(f"{W.BLOCKS}/val/.0-0.h5.") for p in W.temporaries(work))
    # 3b: the pack between tiles of its first block, then just after its last block's rename
    for name, fault in (("block pack between tiles", f"kernel.tile:{rng.randint(1, 2)}:train 0-0"),
                        ("block pack after its last rename", "atomic.renamed:1:/test/")):  # fmt: skip
        round_(name, [fault, "atomic.rename:1:eta0/"])
        assert not any((work / W.BLOCKS / s / "0-0.h5").exists() for s in ("train", "val", "test")), name
        assert not (work / W.ETA0).exists()

    # 4: the regression mid-write; training while writing its second checkpoint (step 40)
    round_("regression mid-write, checkpoint mid-write",
           [f"h5.dataset:{rng.randint(1, n_regression)}:results/regression/", "ckpt.write:2"])  # fmt: skip
    assert _resumed_from(work) is None
    assert W.checkpoint_step(work / W.CHECKPOINT) == 20  # the first one stands, whole
    assert W.temporaries(work, "checkpoints"), "the kill did not land mid-write of the checkpoint"

    # 5: the regression between its two outputs; training after its evaluation at step 40
    round_("regression between outputs, training at step 40", ["atomic.renamed:1:ntk.h5", "train.eval:1"])
    assert _resumed_from(work) == 20
    assert W.checkpoint_step(work / W.CHECKPOINT) == 40
    assert not (work / W.REGRESSION / "ntk.h5").exists()

    # 6: training after writing predictions.h5, before curve.csv and metrics.csv
    round_("training between outputs", ["atomic.renamed:1:predictions.h5"])
    assert _resumed_from(work) == 40
    assert (work / W.REGRESSION / "ntk.csv").exists() and not (work / W.SGD / "predictions.h5").exists()

    # 7, 8: the whole process group (snakemake and its jobs) at a random moment of the training job
    for attempt in range(2):
        (work / W.TRAIN_LOG).unlink(missing_ok=True)  # to see the job start (it writes a new one)
        delay = rng.uniform(0.0, 2.0)
        proc = _kill_group_later(work, W.TRAIN_LOG, delay)
        assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill:\n{proc.stdout[-2000:]}"
        kills.append(f"snakemake process group, {delay:.2f} s into the training job")
        _no_partial_outputs(work, ref)
        if attempt == 0:  # the killed snakemake's lock stays: a rerun is refused until --unlock
            locked = W.snakemake(work, check=False)
            assert locked.returncode != 0 and "cannot be locked" in locked.stdout + locked.stderr
        W.snakemake(work, "--unlock")

    # the rerun completes, with the reference run's outputs
    start = time.perf_counter()
    W.snakemake(work)
    times["final rerun"] = round(time.perf_counter() - start, 1)
    W.assert_same_outputs(W.snapshot(work), ref)
    assert not (work / W.CHECKPOINT).exists()  # removed once the run's outputs are written
    # the killed writes left hidden temporaries: verify-cache names and removes them
    stale = W.temporaries(work) + W.temporaries(work, "checkpoints")
    assert stale
    check = W.symflow(work, "verify-cache", "--remove")
    assert check.returncode == 0 and "0 corrupt" in check.stdout, check.stdout + check.stderr
    assert all(p in check.stdout for p in stale)
    assert not W.temporaries(work) and not W.temporaries(work, "checkpoints")
    assert len(kills) >= 10
    print(f"seed {SEED}: {len(kills)} kill points: {kills}; wall times {times}")
