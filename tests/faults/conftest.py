"""Session fixtures of the fault-injection tests: one uninterrupted reference run of the
smallest targets (workflow_runs.TARGETS), shared by every test that compares outputs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from faults import workflow_runs as W


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> tuple[Path, dict]:
    """(workdir, snapshot) of an uninterrupted run from an empty results/.

    SYMFLOW_FAULT_REFERENCE=<folder> reuses a finished reference folder (to iterate on a test)."""
    if os.environ.get("SYMFLOW_FAULT_REFERENCE"):
        work = Path(os.environ["SYMFLOW_FAULT_REFERENCE"])
    else:
        work = W.new_workdir(tmp_path_factory.mktemp("reference"))
        start = time.perf_counter()
        W.snakemake(work)
        print(f"reference run: {time.perf_counter() - start:.1f} s")
    snap = W.snapshot(work)
    assert set(snap) >= {W.DATA, W.ETA0, *W.TARGETS, f"{W.SGD}/predictions.h5", f"{W.REGRESSION}/ntk.h5"}
    assert not W.temporaries(work) and not (work / "checkpoints").exists()
    return work, snap


@pytest.fixture(scope="session")
def second_run(tmp_path_factory) -> tuple[Path, dict, subprocess.CompletedProcess, bool]:
    """A second uninterrupted run from an empty results/ (for determinism), during which a
    second snakemake on the same folder and targets is started (for the lock):
    (workdir, snapshot, the second snakemake's result, whether the first still ran when it ended)."""
    work = W.new_workdir(tmp_path_factory.mktemp("second"))
    first = subprocess.Popen(W.snakemake_cmd(work), cwd=work, env=W.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    locks = work / ".snakemake" / "locks"
    deadline = time.time() + 300
    while not (locks.is_dir() and any(locks.iterdir())):
        assert first.poll() is None and time.time() < deadline, "the first run never took its lock"
        time.sleep(0.05)
    intruder = W.snakemake(work, check=False)
    overlapped = first.poll() is None
    out, _ = first.communicate(timeout=900)
    assert first.returncode == 0, out[-3000:]
    return work, W.snapshot(work), intruder, overlapped
