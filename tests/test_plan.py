"""symflow.jobs and symflow.plan: the jobs the model enumerates are exactly the jobs of
snakemake's dry run (the same output paths, rule by rule); resources grow with the attempt
and with the config's sizes; `symflow plan` prints them."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import CONFIG, REPO, SAMPLE, TINY, copy_config, job_stats, planned, rule_of, snakemake_cmd
from symflow import costs, plan
from symflow.jobs import Jobs, fig2_trained
from symflow.cli import _load_configs, main
from symflow.configuration import validate

PAPER = REPO / "config" / "paper.yaml"
IMAGENET = REPO / "config" / "imagenet.yaml"
IMAGENET_TINY = REPO / "tests" / "configs" / "imagenet_tiny.yaml"
# the tiny ImageNet section on two GPUs a job: whole nodes for train_imagenet, nothing else on a GPU
IMAGENET_GPUS = "imagenet: {resources: {gpus_per_job: 2}}\n"
# a second variant: the official source (download and extraction planned, offline too),
# no kernel reuse, a GPU per job, the flipped 90k-style point and an LAP architecture
VARIANT = """
data: {source: official}
kernels: {reuse_invariant: false}
resources: {gpu: 1}
experiments:
  fig2: {architectures: [FCN, LAP4], transforms: [identity, o3_shared, perm], m: 40, seeds: [0, 1]}
  fig4: {flip: true}
"""


def config_of(*paths: Path | str) -> dict:
    return validate(_load_configs([str(CONFIG), *map(str, paths)]))


def dry_run(workdir: Path, *configs: Path) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    copy_config(workdir)
    (workdir / "data").mkdir(exist_ok=True)
    if not (workdir / "data" / "cifar-10-sample").exists():
        os.symlink(SAMPLE, workdir / "data" / "cifar-10-sample")
    cmd = snakemake_cmd() + ["-s", str(REPO / "Snakefile"), "-d", str(workdir), "-n", "--cores", "2"]
    cmd += ["--configfile", *map(str, configs)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SNAKEMAKE_PROFILE", None)
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["tiny", "official-gpu-noreuse", "plugins", "imagenet", "packed"])
def test_jobs_equal_snakemake_dry_run(tmp_path, variant):
    configs = [TINY]
    if variant == "packed":  # sgd.pack: one rule per pack, its runs' files as its outputs
        (tmp_path / "packed.yaml").write_text("sgd: {pack: 3}\n")
        configs.append(tmp_path / "packed.yaml")
    elif variant == "plugins":  # the worked plug-in example: a new group and architecture
        configs.append(REPO / "examples" / "channel_symmetry.yaml")
    elif variant == "imagenet":
        (tmp_path / "gpus.yaml").write_text(IMAGENET_GPUS)
        configs += [IMAGENET_TINY, tmp_path / "gpus.yaml"]
    elif variant != "tiny":
        (tmp_path / "variant.yaml").write_text(VARIANT)
        configs.append(tmp_path / "variant.yaml")
    output = dry_run(tmp_path / "wf", *configs)
    expected = job_stats(output)
    assert plan.job_counts(config_of(*configs)) == expected
    # the same jobs, not only as many: every output path of every rule
    snakemake_paths = {rule: set(paths) for rule, paths in planned(output).items()}
    model_paths = {
        rule: {p for job in jobs for p in job.outputs().values()}
        for rule, jobs in Jobs(config_of(*configs)).walk().items()
        if rule != "all"
    }
    assert model_paths == snakemake_paths
    if variant == "imagenet":
        assert {"results/fig5.pdf", "results/figS9.png"} <= snakemake_paths["plot_imagenet_figure"] | snakemake_paths[
            "plot_imagenet_samples"]
        assert len(snakemake_paths["train_imagenet"]) == 3 * 4  # (identity, o3_pixel) x (m 96, 67), 3 files each
        for rule in ("train_imagenet", "compute_gram_block", "train_sgd"):
            lines = re.split(rf"rule {rule}(?:_pack_[0-9a-f]{{10}})?:", output, maxsplit=1)[1]
            lines = lines.split("resources:", 1)[1].splitlines()[0]
            whole_node = "gpu=2" in lines and "slurm_extra='--exclusive'" in lines
            assert whole_node == (rule == "train_imagenet"), (rule, lines)
    elif variant != "official-gpu-noreuse":
        assert "gpu=" not in output  # no GPU request on a CPU config
        if variant == "packed":
            from symflow.jobs import Eta0Pack, Pack

            model = Jobs(config_of(*configs))
            packs, eta0_packs = model.packs(Pack), model.packs(Eta0Pack)
            assert expected["train_sgd_pack"] == len(packs) > 1 and expected["train_sgd"] >= 1
            assert expected["estimate_eta0_pack"] == len(eta0_packs) > 1
            assert all(2 <= len(p.members) <= 3 for p in packs + eta0_packs)
            assert all(f"rule {p.rule_name}:" in output for p in packs + eta0_packs)
            # each packed eta0 is in one pack, which produces it
            made = [e for p in eta0_packs for e in p.eta0s]
            assert len(made) == len(set(made)) and all(model.producer(e) in eta0_packs for e in made)
    else:
        assert expected["download_cifar10"] == 1 and expected["extract_cifar10"] == 1
        block = re.split(r"rule compute_gram_block(?:_pack_[0-9a-f]{10})?:", output, maxsplit=1)[1]
        block = block.split("resources:", 1)[1].splitlines()[0]
        assert "gpu=1" in block, block
        # Fig. 4's flipped point (m = 2 n_train) reads its own, mirrored dataset
        assert "-split0-flip/identity/s0.h5" in output and "-split0-flip/o3_pixel/s0.h5" in output


def test_resources_grow_with_attempt_and_size():
    cfg = config_of(TINY)
    for cost in (
        costs.gram_block_cost(cfg, "VEC", 40),
        costs.regression_cost(cfg, 160),
        costs.sgd_cost(cfg, "VEC", 8, 80),
        costs.eta0_cost(cfg, "LCN", 4, 80),
    ):
        first, retry = costs.resources(cost, 1), costs.resources(cost, 2)
        assert retry["mem_mb"] == 2 * first["mem_mb"] and retry["runtime"] >= 2 * first["runtime"] - 1
    # sized from the config, not constants
    assert costs.regression_cost(cfg, 160).mem_mb < costs.regression_cost(cfg, 45000).mem_mb
    assert costs.sgd_cost(cfg, "VEC", 8, 80).seconds < costs.sgd_cost(cfg, "VEC", 64, 80).seconds
    bigger = {**cfg, "sgd": {**cfg["sgd"], "max_steps": 10 * cfg["sgd"]["max_steps"]}}
    assert costs.sgd_cost(cfg, "VEC", 8, 80).seconds < costs.sgd_cost(bigger, "VEC", 8, 80).seconds
    fine = {**cfg, "data": {**cfg["data"], "resolution": 16}}
    assert costs.gram_block_cost(cfg, "GAP", 40).seconds < costs.gram_block_cost(fine, "GAP", 40).seconds
    # per-architecture cost from the engine's recursion: GAP carries every pixel pair, VEC one
    assert costs.kernel_seconds_per_pair(cfg, "GAP") > 10 * costs.kernel_seconds_per_pair(cfg, "VEC")
    # locally connected layers (registry meta) hold R^2 times a conv layer's parameters
    assert costs.network_size(cfg, "LCN", 8)["params"] > 20 * costs.network_size(cfg, "VEC", 8)["params"]


def test_a_pack_costs_one_start_up_and_shares_its_data():
    """A packed job: one process start for its runs, their work at the CPU's measured packing
    rate, one copy of data that several runs share (symflow.costs.pack_cost)."""
    cfg = config_of(TINY)
    model = Jobs(cfg)
    run = model.run("VEC", 8, "identity", "nn", 40, 0)
    same_data = [run, model.run("VEC", 8, "identity", "nn_plus", 40, 0)]
    other_data = [run, model.run("VEC", 8, "o3_pixel", "nn", 40, 0)]
    alone = costs.sgd_cost(cfg, "VEC", 8, 40)
    shared, stacked = costs.pack_cost(cfg, same_data), costs.pack_cost(cfg, other_data)
    work = alone.seconds - costs.JAX_JOB_START_S
    assert shared.seconds == pytest.approx(costs.JAX_JOB_START_S + 2 * work / costs.CPU_PACK_RATE)
    data_mb = 2 * costs._data_bytes(cfg) / 1e6
    assert stacked.mem_mb - shared.mem_mb == pytest.approx(data_mb, abs=1)
    assert shared.mem_mb == pytest.approx(2 * alone.mem_mb - costs.BASE_MEM_MB - data_mb, abs=1)
    gpu = {**cfg, "resources": {**cfg["resources"], "gpu": 1}}
    # on a GPU the per-step floor is paid once for the pack: two small runs cost less than twice one
    assert costs.pack_cost(gpu, same_data).seconds < 2 * costs.sgd_cost(gpu, "VEC", 8, 40).seconds
    # eta0 estimates in turn: one start-up, each one's work, the memory of the largest
    eta0s = [model.run("VEC", 8, t, "nn", 40, 0).eta0() for t in ("identity", "o3_pixel")]
    for c in (cfg, gpu):
        one = costs.eta0_cost(c, "VEC", 8, 40)
        start = costs._jax_start(bool(c["resources"]["gpu"]))
        both = costs.eta0_pack_cost(c, eta0s)
        assert both.seconds == pytest.approx(start + 2 * (one.seconds - start)) and both.mem_mb == one.mem_mb


@pytest.mark.parametrize("extra", [None, PAPER])
def test_a_block_pack_asks_for_its_blocks_in_series(extra):
    """A pack of kernel blocks runs its blocks one after another in one process
    (symflow.kernels.compute_blocks): its threads are one block's, not their sum, and its
    runtime request covers their estimated work in series, with the margin a block alone
    gets, where Snakemake's job groups under the SLURM plugin were sized as if side by side
    (issue 29). Each pack is one column's blocks, at most kernels.pack_minutes of work."""
    from symflow.jobs import Block, BlockPack

    for gpu in (0, 1):
        cfg = config_of(extra or TINY)
        cfg = {**cfg, "resources": {**cfg["resources"], "gpu": gpu}}
        model = Jobs(cfg)
        packs = model.packs(BlockPack)
        assert packs
        limit = 60 * cfg["kernels"]["pack_minutes"]
        for pack in packs:
            cost = plan.job_cost(cfg, pack)
            each = [plan.job_cost(cfg, b) for b in pack.blocks]
            start = costs._block_start(cfg)
            series = start + sum(c.seconds - start for c in each)
            assert cost.seconds == pytest.approx(series) and cost.threads == cfg["kernels"]["threads"]
            assert cost.gpu == bool(gpu) and cost.mem_mb == max(c.mem_mb for c in each)
            assert series - start <= limit
            for attempt in (1, 2):
                asked = costs.runtime_minutes(cost, attempt)
                assert 60 * asked >= costs.RUNTIME_MARGIN * series * attempt
                assert asked >= max(costs.runtime_minutes(c, attempt) for c in each)
            assert len({(b.folder(), b.j) for b in pack.blocks}) == 1  # one column of one data file
            assert all(model.producer(b) is pack for b in pack.blocks)
        alone = model.walk().get("compute_gram_block", set())
        for block in alone:  # alone: the only block of its column's stretch, or longer than a pack
            assert isinstance(model.producer(block), Block)
        if extra is PAPER:  # blocks of more than pack_minutes stay alone
            assert any(costs.block_work_seconds(cfg, b) > limit for b in alone)


def test_a_runtime_limit_caps_requests_and_training_resumes_within_it():
    """resources.max_runtime (a partition's time limit): every runtime request stays under it,
    and a training job, which resumes from its checkpoint, gets the attempts its whole budget
    needs with the runtime margin, paying its start-up and the work since its last checkpoint
    again in each; a retry asks for twice the memory, never more."""
    cfg = config_of(TINY)
    long = {**cfg, "sgd": {**cfg["sgd"], "max_steps": 2_000_000, "max_epochs": None}}
    model = Jobs(long)
    run = model.run("VEC", 8, "identity", "nn", 160, 0)
    cost = plan.job_cost(long, run)
    assert costs.runtime_minutes(cost, 1) > 30  # the budget's runtime, uncapped
    for attempt in (1, 2, 5):
        assert costs.runtime_minutes(cost, attempt, cap=30) == 30
    assert costs.mem_mb(cost, 5) == costs.mem_mb(cost, 2) == 2 * costs.mem_mb(cost, 1)
    attempts = costs.resume_attempts(long, run, 30)
    usable = 30 * 60 - costs.JAX_JOB_START_S - run.checkpoint_loss(long)
    work = cost.limit_seconds - costs.JAX_JOB_START_S
    assert (attempts - 1) * usable < costs.RUNTIME_MARGIN * work <= attempts * usable
    assert costs.resume_attempts(long, run, 0) == 1
    # a checkpoint every 20 steps loses less than one every 1,000,000
    rare = {**long, "sgd": {**long["sgd"], "checkpoint_every": 1_000_000}}
    assert run.checkpoint_loss(rare) > 100 * run.checkpoint_loss(long)
    assert costs.resume_attempts(rare, run, 30) > attempts
    with pytest.raises(costs.RuntimeLimitError, match="resources.max_runtime: 0.03 minutes leave nothing"):
        costs.resume_attempts(long, run, 0.03)
    capped = {**long, "resources": {**long["resources"], "max_runtime": 30}}
    note = next(n for n in plan.plan(capped).notes if n.startswith("resources.max_runtime"))
    assert "resumes from its checkpoint" in note and "attempts" in note


def test_gpu_jobs_pay_the_gpu_start_up(monkeypatch):
    """Every GPU job (kernel block, eta0, run, pack) starts at RATES['h200_job_start_s'], the
    figure bench/gpu_checks.sh measures; CPU jobs keep their CPU start-ups."""
    cfg = config_of(TINY)
    gpu = {**cfg, "resources": {**cfg["resources"], "gpu": 1}}
    model = Jobs(cfg)
    pack = [model.run("VEC", 8, "identity", "nn", 40, 0), model.run("VEC", 8, "identity", "nn_plus", 40, 0)]

    def all_costs(c):
        return [costs.gram_block_cost(c, "GAP", 50), costs.eta0_cost(c, "VEC", 8, 40), costs.sgd_cost(c, "VEC", 8, 40),
                costs.pack_cost(c, pack)]  # fmt: skip

    before = {"cpu": all_costs(cfg), "gpu": all_costs(gpu)}
    monkeypatch.setattr(costs, "GPU_JOB_START_S", costs.GPU_JOB_START_S + 100.0)
    after = {"cpu": all_costs(cfg), "gpu": all_costs(gpu)}
    for b, a in zip(before["gpu"], after["gpu"]):
        assert a.seconds - b.seconds == pytest.approx(100.0)
    assert [c.seconds for c in before["cpu"]] == [c.seconds for c in after["cpu"]]


def test_block_size_trades_jobs_for_memory():
    cfg = config_of(PAPER)
    rows = []
    for bs in (1250, 2500, 5000):
        c = {**cfg, "kernels": {**cfg["kernels"], "block_size": {"default": bs}, "pack_minutes": 0}}
        rows.append((plan.job_counts(c)["compute_gram_block"], costs.gram_block_cost(c, "GAP", bs).mem_mb))
    assert rows[0][0] > rows[1][0] > rows[2][0]
    assert rows[0][1] < rows[1][1] < rows[2][1]


def test_paper_config_is_valid_and_planned():
    cfg = config_of(PAPER)
    assert cfg["data"]["n_train"] == 45000 and cfg["data"]["resolution"] == 32
    assert cfg["sgd"]["max_steps"] == 1_000_000 and cfg["resources"]["gpu"] == 1
    # the paper's protocol: best test accuracy along training, both recipes on every architecture
    # (config/config.yaml's recipe_architectures must not leak into the merged paper config)
    assert cfg["sgd"]["selection"] == "test"
    assert len(fig2_trained(cfg["experiments"]["fig2"])) == 2 * 6
    with open(PAPER) as fh:
        raw = yaml.safe_load(fh)
    assert raw["sgd"]["widths"] == {"FCN": 1024, "LCN": 32, "VEC": 128, "GAP": 128, "LAP4": 128, "LAP8": 128}
    p = plan.plan(cfg)
    stages = p.stage_totals()
    assert set(stages) == set(plan.STAGES) - {"imagenet"}
    assert stages["kernel blocks"]["gpu_hours"] > 0 and stages["regression"]["cpu_hours"] > 0
    assert sum(r.jobs for r in p.rules) < 10_000  # snakemake plans it in under a minute


def test_plan_command(capsys):
    assert main(["plan", "--configfile", str(TINY)]) == 0
    out = capsys.readouterr().out
    for stage in plan.STAGES:
        assert (stage in out) == (stage != "imagenet")  # ImageNet only where the config asks for it
    # 34 kernel blocks in 7 packs; with the curves and report summary (+7), the predictions and the coupled audit (+2)
    assert re.search(r"^total\s+143\s", out, re.M), out
    assert "34 kernel blocks in 7 packed jobs" in out
    assert "CPU-hours" in out and "GPU-hours" in out


def test_plan_command_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {n_trian: 3}\n")
    assert main(["plan", "--configfile", str(bad)]) == 2
    assert "n_trian" in capsys.readouterr().err


def test_imagenet_config_is_planned_with_gpu_hours(capsys):
    """config/imagenet.yaml over config/config.yaml: the CIFAR-10 jobs as before, and the ImageNet stage
    (the conversion and 144 training runs on 8-GPU nodes) with its GPU-hours from the rate table."""
    base, cfg = config_of(), config_of(IMAGENET)
    before, after = plan.job_counts(base), plan.job_counts(cfg)
    assert sum(before.values()) == 851 and {r: n for r, n in after.items() if r in before} == before
    assert after["train_imagenet"] == 144 and after["convert_imagenet"] == 1
    assert after["plot_imagenet_figure"] == after["plot_imagenet_samples"] == 3 and after["gather_imagenet"] == 1
    stages = plan.plan(cfg).stage_totals()
    assert 6_000 < stages["imagenet"]["gpu_hours"] < 6_600
    run = next(iter(plan.jobs(cfg)["train_imagenet"]))
    cost = plan.job_cost(cfg, run)
    assert cost.gpu and cost.gpus == 8 and cost.mem_mb == 64_000
    # a rate measured on faster GPUs shrinks the GPU-hours in proportion
    fast = {**cfg, "imagenet": {**cfg["imagenet"], "resources": {**cfg["imagenet"]["resources"],
                                                                  "per_gpu_rate": 4 * costs.RATES[
                                                                      "imagenet_resnet50_images_per_s"].value}}}
    assert plan.plan(fast).stage_totals()["imagenet"]["gpu_hours"] == pytest.approx(
        stages["imagenet"]["gpu_hours"] / 4, rel=1e-6)
    assert main(["plan", "--configfile", str(IMAGENET)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^imagenet\s+145\s+6,\d{3}\.\d\s", out, re.M), out
    assert re.search(r"^  train_imagenet\s+144\s", out, re.M) and "note: ImageNet: 144 training runs" in out


def test_imagenet_records_name_the_rules_paths():
    from symflow import jobs as J

    cfg = config_of(IMAGENET)
    model = Jobs(cfg)
    run = J.ImageNetRun(model.imagenet_tag, "ResNet101", "o3_pixel", 28_310, 0)
    assert run in model.imagenet_runs()
    assert run.outputs()["run"] == f"results/imagenet/runs/{model.imagenet_tag}/ResNet101/o3_pixel/m28310/s0/run.h5"
    assert run.benchmark() == f"benchmarks/imagenet/{model.imagenet_tag}/ResNet101/o3_pixel/m28310/s0.tsv"
    assert J.ImageNetRun.from_wildcards(dict(tag=model.imagenet_tag, model="ResNet101", transform="o3_pixel",
                                              m="28310", seed="0")) == run
    # speed knobs are resources, never settings: a new worker count names the same runs
    assert model.settings(run) == Jobs(config_of(IMAGENET)).settings(run)
    knobs = {**cfg, "imagenet": {**cfg["imagenet"], "knobs": {**cfg["imagenet"]["knobs"], "workers": 3},
                                 "root": "/elsewhere"}}
    assert Jobs(knobs).imagenet_runs() == model.imagenet_runs() and Jobs(knobs).speed(run)["workers"] == 3
    recipe = {**cfg, "imagenet": {**cfg["imagenet"], "recipe": {**cfg["imagenet"]["recipe"], "epochs": 100}}}
    assert Jobs(recipe).imagenet_tag != model.imagenet_tag



@pytest.mark.slow
def test_gpu_jobs_carry_the_gpu_partition(tmp_path):
    """resources.gpu_partition: every job that asks for a GPU, each pack's own rule included,
    carries slurm_partition (what a profile's set-resources, naming rules one by one, cannot
    give the packs); no other job does. Likewise resources.jobs_per_gpu (read by the GPU
    jobs' configure_jax)."""
    (tmp_path / "gpu.yaml").write_text("resources: {gpu: 1, gpu_partition: gpu-h200, jobs_per_gpu: 3}\nsgd: {pack: 3}\n")
    output = dry_run(tmp_path / "wf", TINY, tmp_path / "gpu.yaml")
    rules: dict[str, set[bool]] = {}
    for block in re.split(r"^(?:local)?rule ", output, flags=re.M)[1:]:
        rule = rule_of(block.split(":", 1)[0])
        resources = re.search(r"^\s*resources: (.*)$", block, re.M)
        line = resources.group(1) if resources else ""
        assert ("slurm_partition=gpu-h200" in line) == ("gpu=1" in line) == ("jobs_per_gpu=3" in line), (rule, line)
        rules.setdefault(rule, set()).add("slurm_partition=gpu-h200" in line)
    # (the tiny config's blocks all go in packs: no compute_gram_block job of its own)
    assert {r for r, marked in rules.items() if True in marked} == set(plan.GPU_RULES) - {"compute_gram_block"}
    assert all(marked == {True} for r, marked in rules.items() if r in plan.GPU_RULES)


def test_network_transforms_narrow_fig2s_finite_networks_and_their_coupled_pairs():
    """experiments.fig2.network_transforms: the default trains GAP_n on clean data only (its
    Sec. 5.3 claims compare clean data); an architecture not named, or named with null, trains
    on every transform, and the coupled audit only pairs what is trained."""
    cfg = config_of(CONFIG)
    assert cfg["experiments"]["fig2"]["network_transforms"] == {"GAP": ["identity"]}
    model = Jobs(cfg)
    trained = {(r.job.arch, r.job.transform) for r in model.figure_rows("fig2") if r.job.rule == "train_sgd"}
    assert {t for a, t in trained if a == "GAP"} == {"identity"}
    assert {t for a, t in trained if a == "VEC"} == set(cfg["experiments"]["fig2"]["transforms"])
    assert all(a != "GAP" for a, _ in model.coupled_pairs())
    # the paper's overlay clears the entry: GAP on every transform, and its invariant pairs coupled
    paper = config_of(PAPER)
    model = Jobs(paper)
    trained = {(r.job.arch, r.job.transform) for r in model.figure_rows("fig2") if r.job.rule == "train_sgd"}
    assert {t for a, t in trained if a == "GAP"} == set(paper["experiments"]["fig2"]["transforms"])
    assert any(a == "GAP" for a, _ in model.coupled_pairs())
