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
    import sys, time
    from symflow.runtime import configure_jax
    configure_jax(1)
    from symflow.architectures import ModelHP
    from symflow.train import TrainConfig, run_sgd
    out, ckpt = sys.argv[1], sys.argv[2]
    run_sgd(
        sys.argv[3], sys.argv[4],
        metrics_path=f"{out}/metrics.csv", predictions_path=f"{out}/predictions.h5", curve_path=f"{out}/curve.csv",
        checkpoint_path=None if ckpt == "-" else ckpt,
        dataset="synthetic", transform="identity", arch="VEC", hp=ModelHP(depth=2), width=4, init="gaussian",
        recipe="nn", m=40, seed=0, member=0,
        cfg=TrainConfig(batch_size=8, max_steps=200, eval_every=10, checkpoint_every=20),
        on_eval=lambda step: time.sleep(0.15),  # slow enough to be killed mid-run
    )
    """)


def _driver(tmp_path, out, ckpt):
    data, eta0 = tmp_path / "data.h5", tmp_path / "eta0.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [PY, "-c", DRIVER, str(out), str(ckpt), str(data), str(eta0)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_run_resumes_to_the_same_numbers(tmp_path):
    """SIGKILL at a random moment after the first checkpoint, start again, compare."""
    from symflow.h5io import read_h5

    _write_data(tmp_path / "data.h5")
    (tmp_path / "eta0.json").write_text(json.dumps({"eta0": 0.05}))
    ckpt = tmp_path / "ck" / "state.msgpack"
    reference = _driver(tmp_path, tmp_path / "ref", "-")
    killed = _driver(tmp_path, tmp_path / "run", ckpt)
    deadline = time.time() + 300
    while not ckpt.exists():
        assert killed.poll() is None, f"the run ended before its first checkpoint: {killed.stderr.read()}"
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 1.0))
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "run" / "metrics.csv").exists(), "killed too late: the run had finished"
    resumed = _driver(tmp_path, tmp_path / "run", ckpt)
    for proc in (reference, resumed):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
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


@pytest.mark.slow
def test_sgd_rules_end_to_end_on_the_tiny_config(tmp_path):
    """eta0 -> train (nn; nn_plus forced to diverge) -> ensemble of two members."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(textwrap.dedent(f"""
            data:
              sample_dir: {REPO / "data" / "cifar-10-sample"}
            sgd:
              widths: {{VEC: 4}}
              max_steps: 40
              eval_every: 20
              checkpoint_every: 20
              lr_estimate_size: 16
              recipes:
                nn: {{lr_factor: 1.0, l2: 0.0}}
                nn_plus: {{lr_factor: 1.0e+6, l2: 1.0e-7}}
            """))
    from symflow.configuration import dataset_id

    dataset = dataset_id(dict(source="sample", resolution=8, n_train=200, n_val=40, n_test=80, split_seed=0))
    run = f"results/sgd/{dataset}/VEC-w4-gaussian/L8-w2-b0.01-f3/identity"
    ens = f"results/ensembles/{dataset}/VEC-w4-gaussian/L8-w2-b0.01-f3/identity/nn/m40/s0/k2"
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
        str(REPO / "config.yaml"),
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
    assert diverged["failed"] == "True" and "non-finite" in diverged["reason"], diverged
    assert diverged["stage"] == "sgd" and diverged["inference"] == "nn_plus"
    members = [_rows(tmp_path / run / f"nn/m40/s0/i{i}/metrics.csv")[0] for i in range(2)]
    assert members[0]["eta0"] == members[1]["eta0"] == diverged["eta0"]  # one eta0 per seed
    assert float(diverged["lr"]) == pytest.approx(1e6 * float(diverged["eta0"]))
    assert members[0]["steps"] == "40" or members[0]["failed"] == "False"
    ensemble = _rows(tmp_path / ens / "metrics.csv")[0]
    assert ensemble["stage"] == "ensemble" and ensemble["ensemble"] == "2"
    assert (tmp_path / run / "nn/m40/s0/i1/curve.csv").exists()
    assert not any((tmp_path / "checkpoints").rglob("*.msgpack"))
    eta0 = json.loads((tmp_path / run / "eta0/m40/s0.json").read_text())
    assert eta0["n"] == 16 and eta0["eta0"] > 0
