"""The plan's cost of ImageNet jobs: the flax example's published rate, scaled by measured FLOPs."""

from __future__ import annotations

import pytest

from symflow.imagenet import cost
from symflow.imagenet.data import TRAIN_IMAGES


@pytest.mark.parametrize("name", ["ResNet18", "MixerS16"])
def test_flops_table_is_what_xla_measures(name):
    assert cost.model_flops(name) / 1e9 == pytest.approx(cost.FORWARD_GFLOPS[name], rel=1e-3)


def test_resnet50_reproduces_the_flax_examples_wall_time():
    # 62,500 steps of 2,048 images (99.9 epochs of ImageNet) in 4.3 h on 8 V100s, evaluations aside
    job = cost.job_cost("ResNet50", TRAIN_IMAGES, epochs=62_500 * 2_048 / TRAIN_IMAGES, gpus=8, eval_every_epochs=0)
    assert job.wall_hours == pytest.approx(4.3, rel=0.01)
    assert job.gpu_hours == pytest.approx(8 * job.wall_hours)
    assert job.images_per_s == pytest.approx(8_269, rel=1e-3)


def test_cost_grows_with_depth_and_m_and_falls_with_a_faster_gpu():
    hours = [cost.job_cost(f"ResNet{d}", TRAIN_IMAGES).gpu_hours for d in (18, 34, 50, 101, 152, 200)]
    assert hours == sorted(hours)
    small = cost.job_cost("ResNet101", 28_310).gpu_hours
    assert small < hours[3] / 20
    fast = cost.job_cost("ResNet101", TRAIN_IMAGES, per_gpu_rate=4 * cost.REFERENCE_IMAGES_PER_S / 8)
    assert fast.gpu_hours == pytest.approx(hours[3] / 4)
    with pytest.raises(KeyError, match="unknown ImageNet model 'ResNet9'"):
        cost.job_cost("ResNet9", 100)
    assert cost.job_cost("ResNetTiny", 100).gpu_hours < cost.job_cost("ResNet18", 100).gpu_hours / 50  # measured


def test_the_paper_config_plans_144_runs():
    import yaml

    from conftest import REPO
    from symflow.imagenet import jobs

    settings = yaml.safe_load((REPO / "config" / "imagenet.yaml").read_text())["imagenet"]
    table = jobs.run_costs(settings)
    assert len(table) == 144 == len(jobs.runs(settings))
    # Fig. 5 left and S3: 4 models x 2 transforms x 12 subsets (one seed); depths and S4: 6 x 3 x 3 at full m,
    # of which the 6 (ResNet34/50/101, clean/rotated, seed 0) are shared
    assert (table["m"] == TRAIN_IMAGES).sum() == 8 + 54 - 6
    assert 6_000 < table["gpu_hours"].sum() < 6_600
    assert jobs.RunKey("ResNet101", "o3_pixel", 28_310, 0) in jobs.runs(settings)
    tag = jobs.settings_tag(settings)
    other = {**settings, "recipe": {**settings["recipe"], "epochs": 100}}
    assert jobs.settings_tag(other) != tag
    assert jobs.settings_tag({**settings, "knobs": {"workers": 1}}) == tag  # speed knobs name nothing
