"""Training to a criterion (issue 14): failures named by kind, selection on validation,
an epoch budget, and resume with the selection snapshots."""

from __future__ import annotations

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from symflow import train as T  # noqa: E402
from symflow.architectures import ModelHP  # noqa: E402

HP = ModelHP(depth=2)
R = 4


def _split(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    return T.Split(rng.standard_normal((n, R, R, 3)).astype(np.float32), np.eye(10, dtype=np.float32)[labels], labels)


SPLITS = (_split(40, 0), _split(10, 1), _split(12, 2))


def _run(arch, width, lr, cfg, **kw):
    model = T.build_model(arch, HP, width)
    params = T.init_params(model.init_fn, T.init_key(0, 0), (R, R, 3))
    return T.train_and_evaluate(model.apply_fn, params, *SPLITS, cfg, lr=lr, key=T.order_key(0), **kw)


# -- oversized learning rates: failed as collapsed or diverged, whichever it is ------------------


@pytest.mark.parametrize(
    "arch, width, lr, kind",
    [
        ("VEC", 4, 3.0, "collapsed"),  # dead ReLUs: the outputs no longer depend on the input
        ("FCN", 64, 30.0, "collapsed"),
        ("FCN", 64, 1e3, "diverged"),  # the loss overflows
        ("VEC", 4, 1e5, "diverged"),
    ],
)
def test_an_oversized_learning_rate_fails_as_collapsed_or_diverged(arch, width, lr, kind):
    cfg = T.TrainConfig(batch_size=8, max_steps=200, eval_every=10)
    r = _run(arch, width, lr, cfg)
    assert r.failed and r.failure == kind, (r.failure, r.reason)
    assert r.steps < cfg.max_steps  # stopped at the failure, not at the budget
    last = r.curve[-1]
    if kind == "collapsed":
        assert r.stop == "collapsed" and "collapsed" in r.reason
        # the evidence: outputs constant over the training set (train accuracy of one class)
        assert last[3] <= 0.3 and np.isfinite(last[4])
    else:
        assert r.stop in ("nonfinite", "exploded") and "diverged" in r.reason
        assert not np.isfinite(last[2]) or last[4] > T.DIVERGE_MSE_RATIO * r.curve[0, 4]
    # what is reported is never the collapsed or diverged network: a finite earlier evaluation
    assert np.isfinite(r.test_outputs).all()


def test_a_collapsed_network_is_detected_from_its_outputs():
    spread = T.output_spread(np.tile(np.arange(10.0), (5, 1)))  # the same outputs for every example
    assert spread == 0.0
    assert T.output_spread(np.random.default_rng(0).standard_normal((50, 10))) == pytest.approx(1.0, abs=0.15)


def test_a_learning_rate_that_trains_is_not_failed():
    r = _run("FCN", 64, 1.0, T.TrainConfig(batch_size=8, max_steps=200, eval_every=10))
    assert not r.failed and r.failure == "" and r.stop == "early" and r.train_accuracy == 1.0


def test_running_out_of_budget_is_its_own_failure():
    r = _run("VEC", 4, 0.05, T.TrainConfig(batch_size=8, max_steps=30, eval_every=10))
    assert r.failed and r.failure == "budget" and r.stop == "cap" and r.steps == 30
    assert "budget of 30 steps = 6 epochs" in r.reason


# -- selection on validation ---------------------------------------------------------------------


def _row(step, val, val_mse, test):
    return dict(step=step, val_accuracy=val, val_mse=val_mse, test_accuracy=test)


def test_selection_on_validation_picks_the_right_step_on_a_constructed_curve():
    curve = [
        _row(0, 0.10, 0.50, 0.12),
        _row(100, 0.30, 0.40, 0.45),  # the best test accuracy
        _row(200, 0.40, 0.35, 0.33),
        _row(300, 0.40, 0.30, 0.31),  # ties the best val accuracy with a lower val MSE: chosen
        _row(400, 0.40, 0.32, 0.36),
        _row(500, 0.20, 0.60, 0.25),
    ]
    assert T.select_evaluation(curve, "val") == 3
    assert T.select_evaluation(curve, "test") == 1
    with pytest.raises(ValueError, match="selection"):
        T.select_evaluation(curve, "train")


def test_the_reported_point_is_the_best_validation_evaluation_of_the_run():
    cfg = T.TrainConfig(batch_size=8, max_steps=60, eval_every=10, success_train_accuracy=0.0)
    r_val = _run("VEC", 4, 0.05, cfg)
    r_test = _run("VEC", 4, 0.05, T.TrainConfig(**{**cfg.__dict__, "selection": "test"}))
    cols = {c: i for i, c in enumerate(T.CURVE_COLUMNS)}
    rows = [{k: row[cols[k]] for k in ("step", "val_accuracy", "val_mse", "test_accuracy")} for row in r_val.curve]
    i = T.select_evaluation(rows, "val")
    assert r_val.selection == "val" and r_val.best_step == rows[i]["step"]
    assert r_val.test_accuracy == pytest.approx(rows[i]["test_accuracy"])
    assert r_val.val_accuracy == pytest.approx(max(r["val_accuracy"] for r in rows))
    # the paper's protocol is the second column of every run, and the reported point of selection=test
    best_test = max(r["test_accuracy"] for r in rows)
    assert r_val.best_test_accuracy == pytest.approx(best_test) == r_test.test_accuracy
    assert r_test.selection == "test" and r_test.best_test_accuracy == r_test.test_accuracy
    # the same trajectory either way
    np.testing.assert_array_equal(r_val.curve[:, :-1], r_test.curve[:, :-1])


# -- an epoch budget -----------------------------------------------------------------------------


@pytest.mark.parametrize("max_epochs, steps", [(3, 15), (2.5, 13), (100, 60)])
def test_an_epoch_budget_stops_at_the_right_step(max_epochs, steps):
    # m = 40, batch 8: 5 steps an epoch; max_steps 60 caps the largest budget
    cfg = T.TrainConfig(batch_size=8, max_steps=60, max_epochs=max_epochs, eval_every=10, success_train_accuracy=0.0)
    assert cfg.step_budget(40) == steps
    r = _run("VEC", 4, 0.05, cfg)
    assert r.steps == steps and r.epochs == pytest.approx(steps / 5)
    assert list(r.curve[:, 0]) == sorted(set([0] + list(range(10, steps, 10)) + [steps]))


def test_the_epoch_budget_is_validated():
    with pytest.raises(ValueError, match="max_epochs"):
        T.TrainConfig(max_epochs=0)
    assert T.TrainConfig(max_epochs=None).step_budget(10_000) == T.TrainConfig().max_steps


# -- resume after a kill: the snapshots survive the checkpoint -----------------------------------


class _Killed(Exception):
    pass


def test_resume_after_a_kill_equals_an_uninterrupted_run_with_its_selection(tmp_path):
    cfg = T.TrainConfig(batch_size=8, max_steps=60, max_epochs=10, eval_every=10, checkpoint_every=20)
    reference = _run("VEC", 4, 0.05, cfg)

    def kill(step):
        if step >= 30:
            raise _Killed

    ckpt = T.Checkpoint(tmp_path / "state.msgpack", "run")
    with pytest.raises(_Killed):
        _run("VEC", 4, 0.05, cfg, checkpoint=ckpt, on_eval=kill)
    resumed = _run("VEC", 4, 0.05, cfg, checkpoint=ckpt)
    assert resumed.resumed_from == 20
    for name in ("steps", "best_step", "best_test_step", "stop", "failed", "failure", "reason", "selection"):
        assert getattr(resumed, name) == getattr(reference, name), name
    for name in ("test_accuracy", "test_mse", "val_accuracy", "train_accuracy", "best_test_accuracy", "epochs"):
        a, b = getattr(resumed, name), getattr(reference, name)
        assert a == b or (math.isnan(a) and math.isnan(b)), name
    np.testing.assert_array_equal(resumed.test_outputs, reference.test_outputs)
    np.testing.assert_array_equal(resumed.val_outputs, reference.val_outputs)
    np.testing.assert_array_equal(resumed.curve[:, :-1], reference.curve[:, :-1])


# -- the training summary (results/tables/training.csv, `symflow training`) ---------------------


def test_the_training_summary_counts_runs_by_outcome(tmp_path, capsys):
    from symflow.cli import main
    from symflow.figures.table import load_runs, training_summary
    from symflow.results import write_rows

    def run(arch, failure="", epochs=100.0, wall=10.0, recipe="nn_plus"):
        return dict(stage="sgd", dataset="d", transform="identity", group="identity", architecture=arch, width=16,
                    init="gaussian", inference=recipe, m=100, seed=0, member=0, ensemble=1, accuracy=0.2,
                    failed=bool(failure), failure=failure, reason=failure, steps=int(epochs * 2.5), epochs=epochs,
                    wall_time_s=wall, selection="val", path=f"{arch}{failure}{epochs}{recipe}")

    rows = [run("VEC"), run("VEC", "collapsed", 50), run("VEC", epochs=300), run("GAP", "budget", 3000, 60),
            run("GAP", "diverged", 10), run("GAP"), run("VEC", recipe="nn"),
            dict(stage="regression", dataset="d", transform="identity", group="identity", architecture="VEC",
                 inference="ntk", m=100, seed=0, member=0, ensemble=1, accuracy=0.3, failed=False, path="k")]
    (tmp_path / "tables").mkdir()
    write_rows(tmp_path / "tables" / "runs.csv", rows)
    table = training_summary(load_runs(tmp_path / "tables" / "runs.csv")).set_index(["architecture", "inference"])
    vec = table.loc[("VEC", "nn_plus")]
    assert (vec["runs"], vec["converged"], vec["collapsed"], vec["budget"]) == (3, 2, 1, 0)
    assert vec["median_epochs"] == 100.0
    gap = table.loc[("GAP", "nn_plus")]
    assert (gap["runs"], gap["converged"], gap["budget"], gap["diverged"]) == (3, 1, 1, 1)
    total = table.loc[("all", "")]
    assert (total["runs"], total["converged"]) == (7, 4)  # the kernel row is not a training run
    assert main(["training", str(tmp_path), "--csv"]) == 0
    assert "VEC,16,nn_plus,3,2,0,1,0" in capsys.readouterr().out
