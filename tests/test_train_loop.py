"""The training loop: determinism, checkpoint/resume, failed runs, early stopping."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from symflow import train as T  # noqa: E402
from symflow.architectures import ModelHP  # noqa: E402

HP = ModelHP(depth=2)
R = 4
CFG = T.TrainConfig(batch_size=8, max_steps=60, eval_every=10, checkpoint_every=20)
LR = 0.05


def _split(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    return T.Split(rng.standard_normal((n, R, R, 3)).astype(np.float32), np.eye(10, dtype=np.float32)[labels], labels)


@pytest.fixture(scope="module")
def setup():
    model = T.build_model("VEC", HP, 4)
    params = T.init_params(model.init_fn, T.init_key(0, 0), (R, R, 3))
    return model, params, (_split(40, 0), _split(10, 1), _split(12, 2))


def _run(setup, cfg=CFG, lr=LR, **kw):
    model, params, splits = setup
    return T.train_and_evaluate(model.apply_fn, params, *splits, cfg, lr=lr, key=T.order_key(0), **kw)


def _assert_same(a: T.RunResult, b: T.RunResult):
    """Equal numbers (bit for bit), wall times aside."""
    assert (a.steps, a.best_step, a.stop, a.failed, a.reason) == (b.steps, b.best_step, b.stop, b.failed, b.reason)
    for name in ("test_accuracy", "test_mse", "val_accuracy", "train_accuracy"):
        assert getattr(a, name) == getattr(b, name) or (math.isnan(getattr(a, name)) and math.isnan(getattr(b, name)))
    np.testing.assert_array_equal(a.test_outputs, b.test_outputs)
    np.testing.assert_array_equal(a.val_outputs, b.val_outputs)
    np.testing.assert_array_equal(a.curve[:, :-1], b.curve[:, :-1])  # the last column is wall time


@pytest.fixture(scope="module")
def reference(setup):
    return _run(setup)


def test_training_is_deterministic(setup, reference):
    assert reference.steps == 60 and reference.curve.shape == (7, len(T.CURVE_COLUMNS))
    assert reference.curve[-1, 4] < 0.5 * reference.curve[0, 4]  # it learns: train MSE falls
    _assert_same(_run(setup), reference)


def test_chunks_do_not_change_the_trajectory(setup):
    """The batch of a step depends on (seed, step) only: 25 steps == 10 + 15 steps."""
    model, params, (train, _, _) = setup
    x, y = jnp.asarray(train.x), jnp.asarray(train.y)
    whole = T.create_train_state(model.apply_fn, params, LR, 0.9, 1e-3)
    whole, _, _ = T.train_steps(whole, x, y, T.order_key(0), 25, 8)
    parts = T.create_train_state(model.apply_fn, params, LR, 0.9, 1e-3)
    parts, _, _ = T.train_steps(parts, x, y, T.order_key(0), 10, 8)
    parts, _, _ = T.train_steps(parts, x, y, T.order_key(0), 15, 8)
    assert int(whole.step) == int(parts.step) == 25
    for a, b in zip(jax.tree_util.tree_leaves(whole.params), jax.tree_util.tree_leaves(parts.params)):
        np.testing.assert_array_equal(a, b)
    other = T.create_train_state(model.apply_fn, params, LR, 0.9, 1e-3)
    other, _, _ = T.train_steps(other, x, y, T.order_key(1), 25, 8)  # another seed's batch order
    assert not np.array_equal(other.params[-1][0], whole.params[-1][0])


def test_each_epoch_visits_every_example_once():
    key = T.order_key(0)
    perms = [np.asarray(T.epoch_perm(key, jnp.int32(s), m=40, steps_per_epoch=5)) for s in (0, 4, 5, 10)]
    for p in perms:
        assert sorted(p.tolist()) == list(range(40))
    np.testing.assert_array_equal(perms[0], perms[1])  # steps 0..4: one epoch, one permutation
    assert not np.array_equal(perms[1], perms[2])
    assert T.batch_layout(250, 40) == (40, 6) and T.batch_layout(20, 40) == (20, 1)


class _Killed(Exception):
    pass


def _kill_at(step):
    def on_eval(s):
        if s == step:
            raise _Killed(s)

    return on_eval


def test_resume_after_an_interruption_ends_with_the_same_numbers(setup, reference, tmp_path):
    ckpt = T.Checkpoint(tmp_path / "ck" / "state.msgpack", "run-a")
    with pytest.raises(_Killed):
        _run(setup, checkpoint=ckpt, on_eval=_kill_at(30))
    saved = ckpt.load()
    assert saved is not None and int(saved["step"]) == 20  # checkpoints at 20, 40 (every 20)
    resumed = _run(setup, checkpoint=ckpt)
    assert resumed.resumed_from == 20
    _assert_same(resumed, reference)
    ckpt.remove()
    assert not (tmp_path / "ck").exists()


def test_a_corrupt_or_foreign_checkpoint_is_ignored(setup, reference, tmp_path, caplog):
    path = tmp_path / "state.msgpack"
    with pytest.raises(_Killed):
        _run(setup, checkpoint=T.Checkpoint(path, "run-a"), on_eval=_kill_at(50))
    blob = path.read_bytes()

    path.write_bytes(blob[:-7])  # truncated
    with caplog.at_level(logging.WARNING):
        r = _run(setup, checkpoint=T.Checkpoint(path, "run-a"))
    assert r.resumed_from == 0 and "checksum mismatch" in caplog.text
    _assert_same(r, reference)

    caplog.clear()
    path.write_bytes(blob)
    with caplog.at_level(logging.WARNING):
        r = _run(setup, checkpoint=T.Checkpoint(path, "run-b"))  # another run's state
    assert r.resumed_from == 0 and "other run settings" in caplog.text
    _assert_same(r, reference)

    path.write_bytes(b"not a checkpoint")
    assert T.Checkpoint(path, "run-a").load() is None


def test_a_diverging_run_is_failed_with_its_reason(setup):
    r = _run(setup, lr=1e5)
    assert r.failed and r.stop == "nonfinite" and "non-finite" in r.reason
    assert r.steps <= CFG.eval_every  # stopped at the first chunk, not at the cap
    assert r.best_step == 0 and np.isfinite(r.test_outputs).all()  # the best finite point: the init
    assert np.isnan(r.curve[-1, 2])


def test_a_run_below_the_success_threshold_is_failed(setup):
    r = _run(setup, cfg=T.TrainConfig(batch_size=8, max_steps=10, eval_every=10))
    assert r.failed and r.stop == "cap" and r.reason.startswith("best train accuracy")
    assert 0 <= r.test_accuracy <= 1 and r.steps == 10


def test_early_stop_at_full_train_accuracy():
    model = T.build_model("FCN", HP, 64)
    params = T.init_params(model.init_fn, T.init_key(0, 0), (R, R, 3))
    train, val, test = _split(16, 0), _split(8, 1), _split(8, 2)
    cfg = T.TrainConfig(batch_size=8, max_steps=2000, eval_every=20)
    r = T.train_and_evaluate(model.apply_fn, params, train, val, test, cfg, lr=0.1, key=T.order_key(0))
    assert r.stop == "early" and not r.failed and r.train_accuracy == 1.0 and r.steps < 2000
    assert r.curve[-1, 3] == 1.0 and r.steps % 20 == 0


def test_eta0_is_two_n_over_lambda_max_of_the_ntk():
    model = T.build_model("FCN", HP, 32)
    x = np.random.default_rng(0).standard_normal((6, R, R, 3)).astype(np.float32)
    keys = T.eta0_keys("mc", seed=0, samples=2)
    est = T.estimate_eta0(model.init_fn, model.apply_fn, x, keys)
    kernels = [T.empirical_ntk(model.apply_fn, T.init_params(model.init_fn, k, (R, R, 3)), x) for k in keys]
    lam = np.linalg.eigvalsh(np.mean(kernels, axis=0))[-1]
    assert est.eta0 == pytest.approx(2 * 6 / lam, rel=1e-6) and est.n == 6 and est.samples == 2
    assert est.lambda_max_samples == pytest.approx([np.linalg.eigvalsh(k)[-1] for k in kernels], rel=1e-6)
    blocked = T.empirical_ntk(model.apply_fn, T.init_params(model.init_fn, keys[0], (R, R, 3)), x, block=4)
    np.testing.assert_allclose(blocked, kernels[0], rtol=1e-5, atol=1e-5 * np.abs(kernels[0]).max())
    # own: the run's own initialisation, so the two recipes of a (seed, member) share it
    own = T.eta0_keys("own", seed=3, member=2)
    assert len(own) == 1 and np.array_equal(own[0], T.init_key(3, 2))
    assert not np.array_equal(T.eta0_keys("mc", 3, 0)[0], T.eta0_keys("mc", 4, 0)[0])
    np.testing.assert_array_equal(T.eta0_keys("mc", 3, 0)[1], T.eta0_keys("mc", 3, 5)[1])  # members share
