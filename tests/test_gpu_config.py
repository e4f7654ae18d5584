"""config/gpu.yaml (issue 18, item 4): every CIFAR-10 figure on the shipped sample at 32 x 32
with the paper's widths, planned within 4 H200-hours from the rates measured on an H200."""

from __future__ import annotations

import re

import yaml

from conftest import CONFIG, REPO
from symflow import costs, plan
from symflow.cli import _load_configs, main
from symflow.configuration import validate
from symflow.jobs import FIGURES

GPU = REPO / "config" / "gpu.yaml"
BUDGET_H200_HOURS = 4.0


def config_of(*paths) -> dict:
    return validate(_load_configs([str(CONFIG), *map(str, paths)]))


def test_gpu_config_asks_for_every_figure_at_the_papers_resolution_and_widths():
    cfg = config_of(GPU)
    assert cfg["data"]["source"] == "sample" and cfg["data"]["resolution"] == 32 and cfg["resources"]["gpu"] == 1
    with open(GPU) as fh:
        raw = yaml.safe_load(fh)
    assert raw["sgd"]["widths"] == {"FCN": 1024, "LCN": 32, "VEC": 128, "GAP": 128, "LAP4": 128, "LAP8": 128}
    # Fig. 3 brackets both of the paper's peaks (2^6 NN, 2^7 NN+); three seeds where claims are decided
    assert max(cfg["experiments"]["fig3"]["widths"]) >= 256
    # (every figure: a finite-network claim is decided only on cells with two successful seeds)
    assert all(len(cfg["experiments"][f]["seeds"]) >= 3 for f in ("fig2", "fig3", "fig4", "figS1", "figS5", "figS6"))
    assert not any((cfg["experiments"]["fig2"]["network_transforms"] or {}).values())  # every transform
    # the paper's criterion: stop at 100% train accuracy, failed below 95%, best test accuracy reported
    assert cfg["sgd"]["success_train_accuracy"] == 0.95 and cfg["sgd"]["selection"] == "test"
    fig2 = cfg["experiments"]["fig2"]
    assert set(fig2["architectures"]) == {"FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8"}
    assert set(fig2["recipes"]) == {"nn", "nn_plus"} and not any((fig2["recipe_architectures"] or {}).values())
    jobs = plan.jobs(cfg)
    figures = {job.figure for job in jobs["plot_figure"]}
    assert figures == set(FIGURES) and len(jobs["plot_figS2"]) == 1


def test_gpu_config_plans_within_four_h200_hours(capsys):
    p = plan.plan(config_of(GPU))
    gpu_hours = sum(r.hours for r in p.rules if r.gpu)
    # (its kernel blocks all go in packs, kernels.pack_minutes: no compute_gram_block job of its own)
    # (and its runs and eta0 estimates mostly so: a run is alone where its shape has no partner)
    gpu_rules = {r.rule for r in p.rules if r.gpu}
    assert {"compute_gram_block_pack", "train_sgd_pack", "estimate_eta0_pack"} <= gpu_rules
    assert gpu_rules <= set(plan.GPU_RULES) - {"compute_gram_block"}
    assert 1.0 < gpu_hours <= BUDGET_H200_HOURS, gpu_hours
    # priced from the H200 measurements, each with its date and the command that measured it
    for name in ("h200_peak_gflops", "h200_bandwidth_gbs", "h200_kernel_efficiency", "h200_sgd_gflops"):
        source = costs.RATES[name].source
        assert "H200" in source and "bench/gpu_checks.sh" in source and "2026-11-30" in source, name
    assert costs.GPU_SGD_GFLOPS == costs.RATES["h200_sgd_gflops"].value
    assert main(["plan", "--configfile", str(GPU)]) == 0
    out = capsys.readouterr().out
    total = re.search(r"^total\s+[\d,]+\s+([\d,.]+)\s", out, re.M)
    assert total and float(total.group(1).replace(",", "")) <= BUDGET_H200_HOURS, out
    assert "H200-hours" in out
