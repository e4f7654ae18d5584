"""The claims on Fig. 5's slopes (symflow/claims.yaml, predicate imagenet_slope) on slope tables of
synthetic learning curves over the paper's twelve subsets: where they hold, fail, and are untestable
(no ImageNet in the config, too few subsets, a run below the paper's scale)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from symflow import claims as C
from symflow.imagenet.curves import slope_table
from symflow.imagenet.data import subset_sizes

CLAIMS = {c.id: c for c in C.load_claims()}
IDS = ("fig5_resnet101_clean_slope", "fig5_resnet101_rotated_second_phase_slope", "fig5_mixer_clean_second_phase_slope")


def curve(a1, a2, m):
    """error m^-a1 over the first phase (up to m_6), then m^-a2, continuous at m_6."""
    m6 = m[min(6, len(m) - 1)]
    return np.where(m <= m6, 0.9 * (m / m6) ** -a1, 0.9 * (m / m6) ** -a2)


def slopes(curves, total=1_281_167, count=12, failed=()):
    """A slope table from {(model, transform): (a1, a2)}: error follows the bent power law, the loss
    one 0.3 steeper in both phases, two seeds each; `failed` lists (model, transform, i) of failed runs."""
    m = np.asarray(subset_sizes(total, count), float)
    rows = []
    for (model, transform), (a1, a2) in curves.items():
        err, loss = curve(a1, a2, m), 3 * curve(a1 + 0.3, a2 + 0.3, m)
        for seed, noise in ((0, 1.01), (1, 1 / 1.01)):
            for i in range(count):
                bad = (model, transform, i) in failed and seed == 1
                rows.append(dict(model=model, transform=transform, seed=seed, subset=i, m=m[i], error=err[i] * noise,
                                 loss=loss[i] * noise, failed=bad))
    return slope_table(pd.DataFrame(rows))


def verdict(claim_id, table):
    return C.evaluate({"imagenet_slopes": table}, [CLAIMS[claim_id]]).iloc[0]


def test_the_three_rows_of_paper_values_are_claims():
    values = pd.read_csv(C.CLAIMS_FILE.parent / "paper_values.csv")
    fig5 = values[values["figure"] == "fig5"]
    assert len(fig5) == 3 and not fig5["scope"].str.contains("not reproduced").any()
    params = [CLAIMS[i].params for i in IDS]
    assert sorted(p["value"] for p in params) == sorted(fig5["value"].astype(float))
    assert all(CLAIMS[i].table == "imagenet_slopes" and CLAIMS[i].predicate == "imagenet_slope" for i in IDS)


def test_paper_like_curves_hold():
    table = slopes({("ResNet101", "identity"): (0.41, 0.41), ("ResNet101", "o3_pixel"): (0.1, 0.49),
                    ("MixerS16", "identity"): (0.15, 0.38)}, failed={("ResNet101", "o3_pixel", 3)})
    for claim_id in IDS:
        row = verdict(claim_id, table)
        assert row["verdict"] == "holds", (claim_id, row["measured"], row["reason"])
        assert "error" in row["measured"] and "loss" in row["measured"] and row["run_scale"].startswith("ImageNet")
    rotated = verdict("fig5_resnet101_rotated_second_phase_slope", table)
    assert (rotated["n_runs"], rotated["n_failed"]) == (11, 1)  # 6 sizes x 2 seeds, one failed


def test_other_slopes_fail():
    table = slopes({("ResNet101", "identity"): (0.2, 0.6), ("ResNet101", "o3_pixel"): (0.1, 0.3),
                    ("MixerS16", "identity"): (0.15, 0.6)})
    for claim_id in IDS:
        row = verdict(claim_id, table)
        assert row["verdict"] == "fails", (claim_id, row["measured"])
        assert "error: alpha" in row["measured"] and "loss: alpha" in row["measured"]
        assert float(row["low"]) <= float(row["effect"]) <= float(row["high"])
    # a bent clean curve whose one-line fit happens to be near 0.41 is no "almost perfect power law"
    row = verdict("fig5_resnet101_clean_slope", table)
    assert "second - first phase alpha: +0.400" in row["measured"]


def test_untestable_without_imagenet_or_below_the_papers_scale():
    for claim_id in IDS:
        assert verdict(claim_id, None)["reason"].startswith("no ImageNet runs: the config has no `imagenet` section")
    few = slopes({("ResNet101", "identity"): (0.41, 0.41), ("ResNet101", "o3_pixel"): (0.1, 0.49),
                  ("MixerS16", "identity"): (0.15, 0.38)}, count=4)  # four subsets: one phase only
    small = slopes({("ResNet101", "identity"): (0.41, 0.41)}, total=96)  # the CIFAR-built test layout's size
    for claim_id in IDS:
        row = verdict(claim_id, few)
        assert row["verdict"] == "untestable" and "missing runs" in row["reason"], row["reason"]
    row = verdict("fig5_resnet101_clean_slope", small)
    assert row["verdict"] == "untestable" and row["reason"].startswith("scale: the largest m of ResNet101"), row["reason"]
    row = verdict("fig5_mixer_clean_second_phase_slope", small)
    assert row["verdict"] == "untestable" and "no learning curve of MixerS16" in row["reason"]


@pytest.mark.parametrize("phase,points", [("first", 6), ("second", 6), ("all", 12)])
def test_slope_table_has_three_phases_with_run_counts(phase, points):
    table = slopes({("ResNet101", "identity"): (0.3, 0.5)}, failed={("ResNet101", "identity", 0)})
    row = table[(table["phase"] == phase) & (table["quantity"] == "error")].iloc[0]
    assert row["points"] == points and row["runs"] == 2 * points
    assert row["failed"] == (1 if phase in ("second", "all") else 0)
    expected = {"first": 0.3, "second": 0.5}.get(phase)
    if expected is not None:
        assert row["alpha"] == pytest.approx(expected, abs=0.01)
