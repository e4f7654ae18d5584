"""Packed training (issue 18): several runs trained as one vmapped program give the results of
the same runs trained one by one (to float32 rounding), each with its own data order, data,
learning rate, L2, budget, stopping, selection, checkpoint and output files.

One pack serves every test (so that its programs compile once): VEC_8 runs on 16 images,
run 0 stops early at 100% train accuracy (step 90), run 1 (other data: a permutation of the
coordinates, so the pack stacks the data; L2, selection on test) ends at its budget of 35
steps, run 2 diverges at its first chunk; the pack shrinks to run 0 once the others end."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from symflow import train as T  # noqa: E402
from symflow.architectures import ModelHP  # noqa: E402
from symflow.runs import TrainingRun  # noqa: E402
from symflow.train.packed import PackedRun, check_packable, train_packed  # noqa: E402

HP = ModelHP(depth=2)
R = 4
CFG = T.TrainConfig(batch_size=8, max_steps=200, eval_every=10, checkpoint_every=20)
SHORT = T.TrainConfig(batch_size=8, max_steps=35, eval_every=10, checkpoint_every=20, l2=1e-3, selection="test")
SETTINGS = [(0, 0.2, CFG), (1, 0.03, SHORT), (2, 1e5, CFG)]  # (seed, lr, cfg) of each run
MODEL = T.build_model("VEC", HP, 8)  # one apply_fn: every test reuses the compiled programs


def _split(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    return T.Split(rng.standard_normal((n, R, R, 3)).astype(np.float32), np.eye(10, dtype=np.float32)[labels], labels)


def _permuted(split, seed=5):
    """The split under a fixed permutation of its 3d coordinates (another transform's data)."""
    perm = np.random.default_rng(seed).permutation(R * R * 3)
    x = np.asarray(split.x).reshape(len(split.labels), -1)[:, perm].reshape(np.shape(split.x))
    return T.Split(x, split.y, split.labels)


SPLITS = (_split(16, 0), _split(8, 1), _split(8, 2))
DATA = [SPLITS, tuple(_permuted(s) for s in SPLITS), SPLITS]


def _runs(checkpoints=None):
    runs = []
    for i, (seed, lr, cfg) in enumerate(SETTINGS):
        params = T.init_params(MODEL.init_fn, T.init_key(seed, 0), (R, R, 3))
        ckpt = checkpoints[i] if checkpoints else None
        runs.append(PackedRun(params, *DATA[i], cfg, lr=lr, key=T.order_key(seed), eta0=lr, checkpoint=ckpt))
    return runs


def _alone(run, **kw):
    return T.train_and_evaluate(MODEL.apply_fn, run.params, run.train, run.val, run.test, run.cfg, lr=run.lr,
                                key=run.key, eta0=run.eta0, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def alone():
    """The runs trained one by one."""
    results = [_alone(r) for r in _runs()]
    assert [(r.stop, r.steps) for r in results] == [("early", 90), ("cap", 35), ("nonfinite", 10)]
    assert [r.failure for r in results] == ["", "budget", "diverged"]
    return results


@pytest.fixture(scope="module")
def packed():
    return train_packed(MODEL.apply_fn, _runs())


def _assert_close(packed: T.RunResult, alone: T.RunResult):
    """The same run: the same stops, steps and selections; numbers to float32 rounding."""
    for name in ("steps", "best_step", "best_test_step", "stop", "failed", "failure", "selection", "lr", "eta0"):
        assert getattr(packed, name) == getattr(alone, name), name
    assert packed.reason.split(" (")[0] == alone.reason.split(" (")[0]
    for name in ("test_accuracy", "val_accuracy", "train_accuracy", "best_test_accuracy", "test_mse", "epochs"):
        a, b = getattr(packed, name), getattr(alone, name)
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-4, abs=1e-6), name
    np.testing.assert_allclose(packed.test_outputs, alone.test_outputs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(packed.val_outputs, alone.val_outputs, rtol=1e-4, atol=1e-5)
    assert packed.curve.shape == alone.curve.shape
    np.testing.assert_allclose(packed.curve[:, :-1], alone.curve[:, :-1], rtol=1e-4, atol=1e-6)  # wall time aside


def test_a_packed_job_equals_its_runs_made_one_by_one(packed, alone):
    for p, a in zip(packed, alone):
        _assert_close(p, a)


def test_the_device_loop_gives_the_same_runs(alone):
    """One lax.fori_loop per chunk (the accelerator default), stopped runs masked to the end."""
    for p, a in zip(train_packed(MODEL.apply_fn, _runs(), loop="device", compact=False), alone):
        _assert_close(p, a)


class _Killed(Exception):
    pass


def test_a_killed_pack_resumes_each_run_from_its_own_checkpoint(packed, tmp_path):
    """Each run writes the lone run's checkpoint. Killed at run 0's evaluation at step 30, the
    pack resumes runs 0 and 1 from step 20 and run 2 (which had diverged, no checkpoint) from
    step 0, and ends with the uninterrupted numbers; a lone run resumes from a packed run's
    checkpoint too."""
    ckpts = [T.Checkpoint(tmp_path / f"run{i}.ckpt", f"run-{i}") for i in range(3)]

    def kill(i, step):
        if i == 0 and step == 30:
            raise _Killed

    with pytest.raises(_Killed):
        train_packed(MODEL.apply_fn, _runs(ckpts), on_eval=kill)
    assert [int(c.load()["step"]) for c in ckpts[:2]] == [20, 20] and ckpts[2].load() is None
    shutil.copy(ckpts[0].path, tmp_path / "copy.ckpt")
    resumed = train_packed(MODEL.apply_fn, _runs(ckpts))
    assert [r.resumed_from for r in resumed] == [20, 20, 0]
    for r, whole in zip(resumed, packed):
        _assert_close(r, whole)
    lone = _alone(_runs()[0], checkpoint=T.Checkpoint(tmp_path / "copy.ckpt", "run-0"))
    assert lone.resumed_from == 20
    _assert_close(lone, packed[0])


def test_run_sgd_packed_writes_each_runs_files(alone, tmp_path, monkeypatch):
    """The workflow's entry point: each run of the pack reads its own data and eta0 files and
    writes the predictions, curve and metrics that run_sgd writes for it alone."""
    from symflow.h5io import read_h5, write_h5
    from symflow.train import run as run_module

    monkeypatch.setattr(run_module, "build_model", lambda arch, hp, width, num_classes=10: MODEL)  # the compiled programs
    for name, splits in (("data", SPLITS), ("permuted", DATA[1])):
        arrays = {}
        for part, s in zip(("train", "val", "test"), splits):
            arrays |= {f"x_{part}": np.asarray(s.x), f"y_{part}": s.y, f"labels_{part}": s.labels}
        write_h5(tmp_path / f"{name}.h5", arrays, {"kind": "dataset"})
    runs = []
    for i, (seed, lr, cfg) in enumerate(SETTINGS):
        (tmp_path / f"eta0-{i}.json").write_text(json.dumps({"eta0": lr}))
        out = tmp_path / f"run{i}"
        runs.append(dict(
            data_path=tmp_path / ("permuted.h5" if i == 1 else "data.h5"), eta0_path=tmp_path / f"eta0-{i}.json",
            metrics_path=out / "metrics.csv", predictions_path=out / "predictions.h5", curve_path=out / "curve.csv",
            checkpoint_path=tmp_path / f"ck{i}.ckpt", cfg=cfg,
            run=TrainingRun("synthetic", "VEC", 8, "gaussian", HP.tag, "identity", "nn", 16, seed, 0),
        ))  # fmt: skip
    results = T.run_sgd_packed(runs)
    for i, (result, a) in enumerate(zip(results, alone)):
        _assert_close(result, a)
        arrays, attrs = read_h5(tmp_path / f"run{i}" / "predictions.h5")
        np.testing.assert_allclose(arrays["test_outputs"], a.test_outputs, rtol=1e-4, atol=1e-5)
        checksum = read_h5(runs[i]["data_path"])[1]["content_sha256"]  # run 1's data file is another
        assert (attrs["steps"], attrs["stop"], attrs["data_checksum"]) == (a.steps, a.stop, checksum)
        with open(tmp_path / f"run{i}" / "metrics.csv", newline="") as fh:
            row = next(csv.DictReader(fh))
        assert (int(row["seed"]), int(row["steps"]), row["failure"]) == (SETTINGS[i][0], a.steps, a.failure)
        with open(tmp_path / f"run{i}" / "curve.csv", newline="") as fh:
            assert len(list(csv.DictReader(fh))) == len(a.curve)
        assert not (tmp_path / f"ck{i}.ckpt").exists()  # removed once the outputs are written
    runs[1]["run"] = dataclasses.replace(runs[1]["run"], width=4)
    with pytest.raises(ValueError, match="one network"):
        T.run_sgd_packed(runs)


def test_only_runs_of_one_shape_pack():
    runs = _runs()
    check_packable(runs)
    wider = jax.tree_util.tree_map(lambda a: np.concatenate([a, a], axis=-1), runs[0].params)  # another width
    with pytest.raises(ValueError, match="parameters differ"):
        check_packable([runs[0], PackedRun(wider, *SPLITS, CFG, lr=0.05, key=T.order_key(0))])
    with pytest.raises(ValueError, match="train.x has shape"):
        check_packable([runs[0], PackedRun(runs[1].params, _split(8, 0), *SPLITS[1:], CFG, lr=0.1, key=runs[1].key)])
    runs[1].cfg = T.TrainConfig(batch_size=4, max_steps=60, eval_every=10)
    with pytest.raises(ValueError, match="cfg.batch_size"):
        check_packable(runs)
    with pytest.raises(ValueError, match="loop must be"):
        train_packed(MODEL.apply_fn, runs[:1], loop="scan")
