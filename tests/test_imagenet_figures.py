"""Figs. 5, S3, S4 and S7-S9 from small tables, and Fig. 5 end to end from tiny runs on real images
(an ImageNet-layout folder built from the CIFAR-10 sample)."""

from __future__ import annotations

import numpy as np
import pytest

from imagenet_layout import build_layout
from symflow.imagenet import data as D
from symflow.imagenet.curves import slope_table
from symflow.imagenet.data import subset_sizes
from symflow.imagenet.results import POINT_COLUMNS, HISTORY_COLUMNS, _write_csv


def table(tmp_path):
    """A points table over the paper's 12 subsets (power laws with a cusp at m_6, 2 seeds, one failed run),
    ResNet depths at full m, and a history per full-m run."""
    rng = np.random.default_rng(0)
    sizes = subset_sizes()
    points, history = [], []
    models = ["ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet200", "MixerS16"]
    for model in models:
        for transform, bend in (("identity", 0.0), ("o3_pixel", 0.2), ("perm", 0.6)):
            for i, m in enumerate(sizes):
                if model not in ("ResNet34", "ResNet50", "ResNet101", "MixerS16") and i > 0:
                    continue
                for seed in (0, 1, 2):
                    err = min(0.95, 0.25 * (m / sizes[0]) ** -0.41 + bend * (i >= 6) * (m / sizes[6]) ** -0.1)
                    err *= 1 + 0.01 * rng.standard_normal()
                    failed = (model, transform, i, seed) == ("ResNet101", "o3_pixel", 3, 2)
                    path = f"runs/{model}/{transform}/m{m}/s{seed}/run.h5"
                    points.append(dict(model=model, transform=transform, group=transform, seed=seed, subset_seed=0,
                                       subset=i, m=m, top1=1 - err, error=err, loss=2.5 * err, failed=failed,
                                       path=path))
                    if i == 0:
                        for e in range(1, 11):
                            history.append(dict(model=model, transform=transform, seed=seed, m=m, subset=0, epoch=e,
                                                step=100 * e, test_top1=(1 - err) * (1 - 0.5 ** e), path=path))
    _write_csv(tmp_path / "points.csv", POINT_COLUMNS, points)
    _write_csv(tmp_path / "history.csv", HISTORY_COLUMNS, history)
    return tmp_path / "points.csv", tmp_path / "history.csv"


def assert_figure(path):
    assert path.exists() and path.stat().st_size > 5_000


def test_fig5_S3_S4_from_a_small_table(tmp_path):
    from symflow.figures.fig5 import paper_slopes, plot_fig5
    from symflow.figures.figS3 import plot_figS3
    from symflow.figures.figS4 import plot_figS4
    from symflow.imagenet.results import load_points

    points, history = table(tmp_path)
    plot_fig5(points, tmp_path / "fig5.pdf", tmp_path / "fig5.png")
    plot_figS3(points, tmp_path / "figS3.pdf", tmp_path / "figS3.png")
    plot_figS4(points, history, tmp_path / "figS4.pdf", tmp_path / "figS4.png")
    for name in ("fig5", "figS3", "figS4"):
        assert_figure(tmp_path / f"{name}.pdf")
        assert_figure(tmp_path / f"{name}.png")
    assert paper_slopes() == {("ResNet101", "o3_pixel"): ("second", 0.49), ("MixerS16", "identity"): ("second", 0.38),
                              ("ResNet101", "identity"): ("all", 0.41)}
    slopes = slope_table(load_points(points)).set_index(["model", "transform", "quantity", "phase"])["alpha"]
    assert slopes[("ResNet101", "identity", "error", "second")] == pytest.approx(0.41, abs=0.03)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    D.convert(build_layout(root, train_per_class=16, val_per_class=4), root / "shards", workers=2)
    return D.Shards(root / "shards")


def test_samples_S7_to_S9_from_real_images(shards, tmp_path):
    from symflow.figures.figS7 import plot_samples, sample_grid

    for figure, transform, seed in (("Fig. S7", "o3_pixel", 1), ("Fig. S8", "o3_pixel", 2), ("Fig. S9", "identity", 0)):
        plot_samples(shards.folder, tmp_path / f"{figure}.pdf", tmp_path / f"{figure}.png", transform=transform,
                     seed=seed, figure=figure, images=8, columns=4, image_size=64)
        assert_figure(tmp_path / f"{figure}.png")
    clean, labels = sample_grid(shards.folder, "identity", 0, 8, 64)
    rotated, _ = sample_grid(shards.folder, "o3_pixel", 1, 8, 64)
    assert clean.shape == rotated.shape == (8, 64, 64, 3) and labels[0] in shards.classes
    assert 0 <= rotated.min() and rotated.max() <= 1 and not np.allclose(clean, rotated, atol=0.1)


@pytest.mark.slow  # about 30 s: four tiny training runs
def test_fig5_end_to_end_from_tiny_runs(shards, tmp_path):
    from symflow.figures.fig5 import plot_fig5
    from symflow.figures.figS4 import plot_figS4
    from symflow.imagenet.results import gather_history, gather_points, load_points
    from symflow.imagenet.train import Recipe, run_imagenet

    recipe = Recipe(epochs=2, batch_size=8, base_lr=0.8, warmup_epochs=0, image_size=32, half_precision=False,
                    eval_every_epochs=1)
    sizes = D.subset_sizes(shards.count("train"), 4)  # 64, 45, 32, 22
    files = []
    for transform in ("identity", "o3_pixel"):
        for m in sizes[::2]:
            run = tmp_path / "runs" / transform / f"m{m}"
            run_imagenet(shards.folder, run_path=run / "run.h5", metrics_path=run / "metrics.csv",
                         point_path=run / "point.csv", checkpoint_dir=run / "ckpt", model="ResNetTiny",
                         transform=transform, seed=0, m=m, recipe=recipe, threads=2)
            files.append(run)
    assert gather_points([f / "point.csv" for f in files], tmp_path / "points.csv") == 4
    assert gather_history([f / "run.h5" for f in files], tmp_path / "history.csv") == 8
    points = load_points(tmp_path / "points.csv")
    assert sorted(points["subset"]) == [0, 0, 2, 2] and points["top1"].between(0, 1).all()
    plot_fig5(tmp_path / "points.csv", tmp_path / "fig5.pdf", tmp_path / "fig5.png", curve_models=("ResNetTiny",),
              depth_models=("ResNetTiny",))
    plot_figS4(tmp_path / "points.csv", tmp_path / "history.csv", tmp_path / "figS4.pdf", tmp_path / "figS4.png",
               models=("ResNetTiny",), transforms=("identity", "o3_pixel"))
    assert_figure(tmp_path / "fig5.png")
    assert_figure(tmp_path / "figS4.png")
