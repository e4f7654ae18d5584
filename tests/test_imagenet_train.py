"""ImageNet models and training: architectures, the recipe, a few steps of tiny models on real images
(an ImageNet-layout folder built from the CIFAR-10 sample), the run's files, and resumption."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imagenet_layout import build_layout
from symflow.imagenet import data as D
from symflow.imagenet.train import Recipe, learning_rate, run_imagenet, train_and_evaluate

# a recipe that moves a tiny model in a few dozen CPU steps (the paper's: Recipe())
TINY = Recipe(epochs=6, batch_size=16, base_lr=1.6, warmup_epochs=1, image_size=32, half_precision=False,
              eval_every_epochs=2)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    D.convert(build_layout(root), root / "shards", shard_size=40, workers=2)
    return D.Shards(root / "shards")


# torchvision's parameter counts of the same architectures; Mixer-S/16 is "18M" in Tolstikhin et al. (2021)
PARAMS = {"ResNet18": 11_689_512, "ResNet34": 21_797_672, "ResNet50": 25_557_032, "ResNet101": 44_549_160,
          "ResNet152": 60_192_808, "ResNet200": 64_673_832, "MixerS16": 18_528_264}


@pytest.mark.parametrize("name", list(PARAMS))
def test_paper_models_have_the_published_sizes(name):
    import jax
    import jax.numpy as jnp

    from symflow.imagenet.models import build_model

    model = build_model(name)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, 224, 224, 3)), train=False))
    assert sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes["params"])) == PARAMS[name]
    assert ("batch_stats" in shapes) == name.startswith("ResNet")
    out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 224, 224, 3)), train=False), shapes)
    assert out.shape == (2, 1000)


def test_mixer_s16_is_the_papers():
    from symflow.imagenet.models import build_model

    m = build_model("MixerS16")
    assert (m.patch_size, m.num_blocks, m.hidden_dim, m.tokens_mlp_dim, m.channels_mlp_dim) == (16, 8, 512, 256, 2048)


def test_learning_rate_is_warmup_then_cosine_as_optax():
    import optax

    r = Recipe(epochs=20, batch_size=512, warmup_epochs=5, eval_every_epochs=5)
    m = 10_240  # 20 steps an epoch, 400 in all
    assert r.peak_lr == pytest.approx(0.2) and r.total_steps(m) == 400
    ref = optax.join_schedules([optax.linear_schedule(0.0, 0.2, 100), optax.cosine_decay_schedule(0.2, 300)], [100])
    steps = np.arange(0, 401, 7)
    np.testing.assert_allclose(learning_rate(r, m, steps), [float(ref(s)) for s in steps], rtol=1e-5, atol=1e-7)
    assert r.eval_steps(m)[-1] == 400 and r.eval_steps(m)[0] == 100


def test_tiny_resnet_learns_and_writes_its_files(shards, tmp_path):
    from symflow.h5io import read_h5
    from symflow.imagenet.results import POINT_COLUMNS
    from symflow.results import RUN_COLUMNS, read_rows

    out = {k: tmp_path / f"{k}" for k in ("run.h5", "metrics.csv", "point.csv")}
    res = run_imagenet(shards.folder, run_path=out["run.h5"], metrics_path=out["metrics.csv"],
                       point_path=out["point.csv"], checkpoint_dir=tmp_path / "ckpt", model="ResNetTiny",
                       transform="o3_pixel", seed=0, m=64, recipe=TINY, dataset="cifar10-as-imagenet",
                       log_every=4, threads=2)
    losses = [r["train_loss"] for r in res.history.rows]
    assert len(losses) == 3 and losses[-1] < losses[0] - 0.03 and not res.failed
    assert res.history.rows[-1]["test_loss"] < math.log(4)  # below chance on the 4 classes
    assert not (tmp_path / "ckpt").exists()  # removed once the run's files are written
    row = read_rows([out["metrics.csv"]])[0]
    assert tuple(row) == RUN_COLUMNS and row["stage"] == "imagenet" and row["architecture"] == "ResNetTiny"
    assert float(row["accuracy"]) == pytest.approx(res.top1) and row["group"] == "o3_pixel" and row["m"] == "64"
    import csv

    point = next(csv.DictReader(open(out["point.csv"])))
    assert tuple(point) == POINT_COLUMNS
    assert float(point["error"]) == pytest.approx(1 - res.top1) and float(point["loss"]) == pytest.approx(res.loss)
    assert point["subset"] == ""  # 64 is not one of the m_i of the 96 converted images
    arrays, attrs = read_h5(out["run.h5"])
    assert list(arrays["step"]) == [8, 16, 24]
    assert attrs["data_content_sha256"] == shards.digest and attrs["transform"] == "o3_pixel"
    assert attrs["recipe"]["epochs"] == 6 and "grain" in attrs["versions"]


def test_tiny_mixer_learns(shards):
    res = train_and_evaluate(shards, model="MixerTiny", transform="perm", seed=1, m=64, recipe=TINY, log_every=4,
                             threads=2)
    losses = [r["train_loss"] for r in res.history.rows]
    assert losses[-1] < losses[0] - 0.03 and np.isfinite(res.loss) and res.steps == 24


def test_a_killed_run_resumes_to_the_uninterrupted_result(shards, tmp_path, monkeypatch, caplog):
    import jax

    import symflow.faults

    kw = dict(model="ResNetTiny", transform="identity", seed=2, m=64, recipe=TINY, log_every=4, threads=2,
              checkpoint_every=5)
    whole = train_and_evaluate(shards, **kw)

    class Killed(Exception):
        pass

    calls = []

    def kill_at_second(label, where=""):
        calls.append(label)
        if len(calls) == 2:
            raise Killed(where)

    monkeypatch.setattr(symflow.faults, "fault_point", kill_at_second)
    with pytest.raises(Killed):  # checkpoints after steps 5 and 8 (an evaluation); killed after the second
        train_and_evaluate(shards, checkpoint_dir=tmp_path / "ckpt", **kw)
    monkeypatch.undo()
    with caplog.at_level("INFO"):
        resumed = train_and_evaluate(shards, checkpoint_dir=tmp_path / "ckpt", **kw)
    assert "resumed from the checkpoint at step 8 of 24" in caplog.text
    timing = {"images_per_s"}
    first = {k: v for k, v in resumed.history.rows[0].items() if k not in timing}
    assert first == pytest.approx({k: v for k, v in whole.history.rows[0].items() if k not in timing})
    for a, b in zip(jax.tree_util.tree_leaves(whole.state), jax.tree_util.tree_leaves(resumed.state)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert [r["test_top1"] for r in resumed.history.rows] == [r["test_top1"] for r in whole.history.rows]
    assert resumed.top1 == whole.top1 and resumed.loss == pytest.approx(whole.loss, rel=1e-5)


def test_a_checkpoint_of_other_settings_is_ignored(shards, tmp_path, caplog):
    kw = dict(model="ResNetTiny", transform="identity", m=64, recipe=TINY, log_every=4, threads=2,
              checkpoint_dir=tmp_path / "ckpt")
    first = train_and_evaluate(shards, seed=2, **kw)  # leaves its checkpoint at step 16
    with caplog.at_level("INFO"):
        other = train_and_evaluate(shards, seed=3, **kw)
    assert "belongs to other run settings; starting from step 0" in caplog.text
    assert other.steps == 24 and len(other.history.rows) == 3 and other.loss != first.loss


_TWO_DEVICES = """
import json, os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
import jax
from symflow.imagenet import data as D
from symflow.imagenet.train import Recipe, train_and_evaluate
recipe = Recipe(**json.loads(sys.argv[2]))
res = train_and_evaluate(D.Shards(sys.argv[1]), model="ResNetTiny", transform="o3_pixel", seed=0, m=64, recipe=recipe,
                         log_every=4, threads=2)
print(json.dumps({"devices": jax.device_count(), "loss": res.loss, "top1": res.top1}))
"""


@pytest.mark.slow  # a second process with two (CPU) devices, about 20 s
def test_data_parallel_over_two_devices_gives_the_one_device_result(shards):
    import dataclasses
    import json
    import subprocess
    import sys

    from conftest import REPO

    recipe = dataclasses.replace(TINY, epochs=2)
    one = train_and_evaluate(shards, model="ResNetTiny", transform="o3_pixel", seed=0, m=64, recipe=recipe,
                             log_every=4, threads=2)
    args = [sys.executable, "-c", _TWO_DEVICES, str(shards.folder), json.dumps(dataclasses.asdict(recipe))]
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads(proc.stdout.strip().splitlines()[-1])
    assert two["devices"] == 2  # the batch split over both, BatchNorm statistics over the whole batch
    assert two["loss"] == pytest.approx(one.loss, rel=1e-5) and two["top1"] == one.top1
