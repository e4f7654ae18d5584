"""Determinism and concurrency: two runs of the tiny config from an empty results/ give the
same outputs on CPU (every HDF5 array bit for bit, every CSV value but wall times), and a
second snakemake on a results/ folder that a running one holds is refused with Snakemake's
lock message (the folder is shared by the two session fixtures of conftest.py)."""

from __future__ import annotations

import pytest

from faults import workflow_runs as W

pytestmark = pytest.mark.slow


def test_two_runs_from_empty_results_are_identical(reference, second_run):
    work, snap, _, _ = second_run
    W.assert_same_outputs(snap, reference[1])
    assert len(snap) == 10 and not W.temporaries(work)


def test_a_second_snakemake_on_the_same_results_is_refused(second_run):
    _, _, intruder, overlapped = second_run
    assert overlapped, "the first run ended before the second one was refused: nothing was tested"
    out = intruder.stdout + intruder.stderr
    assert intruder.returncode != 0
    assert "Directory cannot be locked" in out and "--unlock" in out, out[-3000:]
    assert "Traceback" not in out
