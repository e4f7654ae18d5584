"""The ImageNet rules end to end (issue 19): the tiny config and a tiny `imagenet` section
(tests/configs/imagenet_tiny.yaml) on an ImageNet-layout folder built from the shipped CIFAR-10
sample (tests/imagenet_layout.py: real photographs, but CIFAR-10's, not ImageNet's) run the
conversion, four training runs of a two-block ResNet, the tables and Figs. 5, S4 and S7 on CPU."""

from __future__ import annotations

import pytest

from conftest import TINY, snakemake_with
from imagenet_layout import build_layout

IMAGENET_TINY = TINY.parent / "imagenet_tiny.yaml"


@pytest.mark.slow
@pytest.mark.workflow
def test_imagenet_rules_to_fig5(workdir):
    import pandas as pd

    from symflow import claims as C
    from symflow.imagenet.results import load_points
    from symflow.results import read_rows

    build_layout(workdir)  # 4 classes x (24 train + 6 val) images at imagenet.root
    configs = [TINY, IMAGENET_TINY]
    proc = snakemake_with(workdir, configs, "results/fig5.pdf", "results/figS4.pdf", "results/figS7.pdf")
    log = proc.stdout + proc.stderr
    for rule, n in (("convert_imagenet", 1), ("train_imagenet", 4), ("gather_imagenet", 1),
                    ("plot_imagenet_figure", 2), ("plot_imagenet_samples", 1)):
        assert f"rule {rule}:" in log and log.count(f"rule {rule}:") == n, rule
    for name in ("fig5", "figS4", "figS7"):
        assert (workdir / "results" / f"{name}.png").stat().st_size > 5_000
    points = load_points(workdir / "results" / "tables" / "imagenet_points.csv")
    assert sorted(points["m"]) == [67, 67, 96, 96] and not points["failed"].any()
    assert points["top1"].between(0, 1).all() and set(points["transform"]) == {"identity", "o3_pixel"}
    # each run's metrics row is a runs.csv row (RUN_COLUMNS, stage imagenet), checked by make_row
    rows = read_rows(sorted((workdir / "results" / "imagenet" / "runs").rglob("metrics.csv")))
    assert len(rows) == 4 and {(r["stage"], r["inference"], r["architecture"]) for r in rows} == {
        ("imagenet", "sgd", "ResNetTiny")}
    # the claims on Fig. 5's slopes read the slope table; at this scale they are untestable, and say why
    slopes = pd.read_csv(workdir / "results" / "tables" / "imagenet_slopes.csv")
    assert set(slopes["phase"]) == {"first", "second", "all"}
    frame = C.evaluate({"imagenet_slopes": slopes}, [c for c in C.load_claims() if c.table == "imagenet_slopes"])
    assert len(frame) == 3 and set(frame["verdict"]) == {"untestable"}
    assert frame["reason"].str.contains("scale|no learning curve").all(), frame["reason"].tolist()
    # complete: nothing to rerun, also after a speed knob (workers, the source's location) changes
    (workdir / "knobs.yaml").write_text("imagenet: {knobs: {workers: 1, log_every: 2}}\n")
    for extra in ([], [workdir / "knobs.yaml"]):
        dry = snakemake_with(workdir, configs + extra, "-n", "results/fig5.pdf", "results/figS4.pdf",
                             "results/figS7.pdf")
        assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-2000:]
