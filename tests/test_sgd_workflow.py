"""The sgd stage as the workflow runs it: a killed job resumes to the same numbers, and
the rules (eta0, training, ensemble) run end to end on the tiny config, a diverging
recipe included, without stopping the workflow."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import CONFIG

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write_data(path: Path) -> None:
    from symflow.h5io import write_h5

    rng = np.random.default_rng(0)
    arrays = {}
    for part, n in (("train", 40), ("val", 10), ("test", 12)):
        labels = rng.integers(0, 10, n)
        arrays[f"x_{part}"] = rng.standard_normal((n, 4, 4, 3)).astype(np.float32)
        arrays[f"y_{part}"] = np.eye(10, dtype=np.float32)[labels]
        arrays[f"labels_{part}"] = labels
    write_h5(path, arrays, {"kind": "dataset"})


DRIVER = textwrap.dedent("""
    import logging, sys, time
    from symflow.runtime import configure_jax
    configure_jax(1)
    logging.basicConfig(level=logging.INFO)
    from symflow.architectures import ModelHP
    from symflow.runs import TrainingRun
    from symflow.train import TrainConfig, run_sgd
    data, eta0, ckpt = sys.argv[1], sys.argv[2], sys.argv[3]

    def run(out, checkpoint, on_eval=None):
        run_sgd(
            data, eta0,
            metrics_path=f"{out}/metrics.csv", predictions_path=f"{out}/predictions.h5", curve_path=f"{out}/curve.csv",
            checkpoint_path=checkpoint,
            run=TrainingRun("synthetic", "VEC", 4, "gaussian", ModelHP(depth=2).tag, "identity", "nn", 40, 0, 0),
            cfg=TrainConfig(batch_size=8, max_steps=200, eval_every=10, checkpoint_every=20),
            on_eval=on_eval,
        )

    if sys.argv[4] == "slow":  # the run to be killed: slow enough to die mid-way
        run(sys.argv[5], ckpt, on_eval=lambda step: time.sleep(0.15))
    else:  # resume it, then an uninterrupted reference in the same process (same XLA set-up)
        run(sys.argv[5], ckpt)
        run(sys.argv[6], None)
    """)


def _driver(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [PY, "-c", DRIVER, str(tmp_path / "data.h5"), str(tmp_path / "eta0.json"), *map(str, args)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_numbers(tmp_path):
    """SIGKILL at a random moment after the first checkpoint, start again, compare."""
    from symflow.h5io import read_h5

    _write_data(tmp_path / "data.h5")
    (tmp_path / "eta0.json").write_text(json.dumps({"eta0": 0.05}))
    ckpt = tmp_path / "ck" / "state.msgpack"
    killed = _driver(tmp_path, ckpt, "slow", tmp_path / "run")
    deadline = time.time() + 300
    while not ckpt.exists():
        assert killed.poll() is None, f"the run ended before its first checkpoint: {killed.stderr.read()}"
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 1.0))
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "run" / "metrics.csv").exists(), "killed too late: the run had finished"
    resumed = _driver(tmp_path, ckpt, "fast", tmp_path / "run", tmp_path / "ref")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert "resumed from checkpoint" in err
    assert not ckpt.exists()  # removed once the outputs are written (keep_checkpoint=False)

    a, b = read_h5(tmp_path / "ref" / "predictions.h5"), read_h5(tmp_path / "run" / "predictions.h5")
    for name in a[0]:
        np.testing.assert_array_equal(a[0][name], b[0][name])
    ra, rb = _rows(tmp_path / "ref" / "metrics.csv")[0], _rows(tmp_path / "run" / "metrics.csv")[0]
    for row in (ra, rb):
        row.pop("wall_time_s"), row.pop("path")
    assert ra == rb and ra["steps"] == "200"
    ca, cb = _rows(tmp_path / "ref" / "curve.csv"), _rows(tmp_path / "run" / "curve.csv")
    assert [{k: v for k, v in r.items() if k != "wall_time_s"} for r in ca] == [
        {k: v for k, v in r.items() if k != "wall_time_s"} for r in cb
    ]


def _small_sgd(path: Path, **sgd) -> Path:
    """A config over the tiny one: VEC_4 of depth 2, evaluated and checkpointed every 20
    steps, eta0 on 16 images; `sgd` sets more of the sgd section."""
    import yaml

    path.write_text(yaml.safe_dump({
        "data": {"sample_dir": str(REPO / "symflow" / "cifar-10-sample")},
        "model": {"depth": 2},
        "sgd": {"widths": {"VEC": 4}, "eval_every": 20, "checkpoint_every": 20, "lr_estimate_size": 16, **sgd},
    }))  # fmt: skip
    return path


@pytest.mark.slow
def test_sgd_rules_end_to_end_on_the_tiny_config(tmp_path):
    """eta0 -> train (nn; nn_plus forced to diverge) -> ensemble (of one member: the rule's
    averaging of several is tested in test_ensemble.py, and each extra member is a job)."""
    recipes = {"nn": {"lr_factor": 1.0, "l2": 0.0}, "nn_plus": {"lr_factor": 1.0e6, "l2": 1.0e-7}}
    extra = _small_sgd(tmp_path / "extra.yaml", max_steps=40, recipes=recipes)
    from symflow.configuration import dataset_id

    digest = "0e454ec3"  # the shipped sample's SHA256SUMS
    dataset = dataset_id(dict(source="sample", resolution=8, n_train=200, n_val=40, n_test=80, split_seed=0), digest)
    run = f"results/sgd/{dataset}/VEC-w4-gaussian/L2-w2-b0.01-f3/identity"
    ens = f"results/ensembles/{dataset}/VEC-w4-gaussian/L2-w2-b0.01-f3/identity/nn/m40/s0/k1"
    targets = [f"{run}/nn_plus/m40/s0/i0/metrics.csv", f"{ens}/metrics.csv"]
    cmd = [
        str(SNAKEMAKE),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--cores",
        "2",
        "--configfile",
        str(CONFIG),
        str(REPO / "tests" / "configs" / "tiny.yaml"),
        str(extra),
        "--quiet",
        "progress",
        "--",
        *targets,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    diverged = _rows(tmp_path / run / "nn_plus/m40/s0/i0/metrics.csv")[0]
    assert diverged["failed"] == "True" and diverged["failure"] == "diverged", diverged
    assert "non-finite" in diverged["reason"] and diverged["selection"] == "val", diverged
    assert diverged["stage"] == "sgd" and diverged["inference"] == "nn_plus"
    member = _rows(tmp_path / run / "nn/m40/s0/i0/metrics.csv")[0]
    assert member["eta0"] == diverged["eta0"]  # one eta0 per (seed, member), shared by the recipes
    assert float(diverged["lr"]) == pytest.approx(1e6 * float(diverged["eta0"]))
    assert member["steps"] == "40" or member["failed"] == "False"
    ensemble = _rows(tmp_path / ens / "metrics.csv")[0]
    assert ensemble["stage"] == "ensemble" and ensemble["ensemble"] == "1"
    assert ensemble["accuracy"] == member["accuracy"]  # the mean of one member is that member
    assert (tmp_path / run / "nn/m40/s0/i0/curve.csv").exists()
    from symflow.h5io import read_attrs

    # the device the run computed on is part of its provenance (the job had no gpu resource)
    assert read_attrs(tmp_path / run / "nn/m40/s0/i0/predictions.h5")["versions"]["jax_device"] == "cpu"
    assert not any((tmp_path / "checkpoints").rglob("*.msgpack"))
    eta0 = json.loads((tmp_path / run / "eta0/m40/s0/i0.json").read_text())
    assert eta0["n"] == 16 and eta0["mode"] == "own" and float(member["eta0"]) == eta0["eta0"]


@pytest.mark.slow
def test_a_packed_job_writes_what_single_jobs_write(tmp_path):
    """sgd.pack: runs of one network and data shape (two transforms, two recipes) train in one
    job, a rule of its own, and each writes the files that its own job writes alone:
    the same rows and predictions to float32 rounding, its own log, no checkpoint left; a
    pack killed mid-training resumes each run from its checkpoint. Their eta0 estimates are
    made by one eta0 pack, to the same numbers exactly, each with its own log."""
    import re

    from symflow.configuration import dataset_id
    from symflow.h5io import read_h5

    dataset = dataset_id(dict(source="sample", resolution=8, n_train=200, n_val=40, n_test=80, split_seed=0), "0e454ec3")
    stem = f"{dataset}/VEC-w4-gaussian/L2-w2-b0.01-f3"
    runs = [f"{stem}/identity/nn/m40/s0/i0", f"{stem}/o3_pixel/nn/m40/s0/i0", f"{stem}/identity/nn_plus/m40/s0/i0"]
    made, saved, eta0_logs = {}, set(), [f"{stem}/{t}/eta0/m40/s0/i0" for t in ("identity", "o3_pixel")]
    for pack in (1, 4):
        workdir = tmp_path / f"pack{pack}"
        workdir.mkdir()
        extra = _small_sgd(workdir / "extra.yaml", max_steps=60, pack=pack)
        cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2",
               "--configfile", str(CONFIG), str(REPO / "tests" / "configs" / "tiny.yaml"), str(extra),
               "--", *[f"results/sgd/{r}/metrics.csv" for r in runs]]  # fmt: skip
        said = ""
        if pack > 1:  # killed after its 6th evaluation of a run (the runs' first checkpoints are written)
            killed = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                                    env={**os.environ, "SYMFLOW_FAULT_KILL": "train.eval:6"})  # fmt: skip
            said = killed.stdout + killed.stderr
            assert killed.returncode != 0 and "train_sgd_pack_" in said
            saved = {str(c.parent.relative_to(workdir / "checkpoints" / "sgd")) for c in (workdir / "checkpoints").rglob("*.msgpack")}
            assert len(saved) >= 2 and saved <= {*runs, f"{stem}/o3_pixel/nn_plus/m40/s0/i0"}, saved
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        rules = set(re.findall(r"^(?:local)?rule (\w+):$", said + proc.stdout + proc.stderr, re.M))
        trained = {r for r in rules if r.startswith("train_sgd")}
        assert (trained == {"train_sgd"}) if pack == 1 else (len(trained) == 1 and re.match(r"train_sgd_pack_", *trained))
        # the runs' two eta0s (identity, o3_pixel): two jobs alone, one eta0 pack with sgd.pack 4
        estimated = {r for r in rules if r.startswith("estimate_eta0")}
        assert (estimated == {"estimate_eta0"}) if pack == 1 else re.fullmatch(r"estimate_eta0_pack_\w{10}", *estimated)
        for e in eta0_logs:
            assert "eta0 = " in (workdir / "logs" / "sgd" / f"{e}.log").read_text(), e
        made[pack] = {}
        for r in runs:
            arrays, attrs = read_h5(workdir / "results" / "sgd" / r / "predictions.h5")
            made[pack][r] = (_rows(workdir / "results" / "sgd" / r / "metrics.csv")[0], arrays, attrs)
            log = (workdir / "logs" / "sgd" / f"{r}.log").read_text()
            assert "done: " in log and r.split("/")[-5] in log  # each run's own log, with its transform
            if pack > 1 and r in saved:  # the killed pack's runs went on from their checkpoints
                assert re.search(r"resumed from checkpoint \S+ at step [1-9]", log), log[-2000:]
        assert not any((workdir / "checkpoints").rglob("*.msgpack"))
    for r in runs:
        (one, one_arrays, one_attrs), (packed, packed_arrays, packed_attrs) = made[1][r], made[4][r]
        # the pack holds the tiny config's four VEC_4 runs at m = 40 (o3_pixel nn_plus too): asking
        # for one run of a pack trains the pack
        assert "pack_size" not in one_attrs and packed_attrs["pack_size"] == 4
        for key in ("steps", "failed", "failure", "transform", "inference", "lr", "eta0", "selection"):
            assert packed[key] == one[key], (r, key, packed[key], one[key])
        for key in ("stop", "best_step", "data_checksum"):
            assert packed_attrs[key] == one_attrs[key], (r, key)
        for key in ("accuracy", "train_accuracy", "mse"):
            assert float(packed[key]) == pytest.approx(float(one[key]), abs=2e-3), (r, key)
        np.testing.assert_allclose(packed_arrays["test_outputs"], one_arrays["test_outputs"], rtol=1e-3, atol=1e-4)
