"""What a validated config asks for, counted before anything runs, and what each job needs.

Two uses, one set of numbers:

* the workflow's rules take their resources from here (``resources(config, rule, ...)``:
  ``mem_mb`` and ``runtime`` in minutes, sized from the config's block size, widths,
  step cap and resolution, and scaled by Snakemake's ``attempt`` so a retry gets more);
* ``symflow plan`` counts the jobs of the default target per rule and per stage, and
  sums their estimated compute hours and disk (``plan(config)``, ``format_plan``).

The jobs are the records of ``symflow.jobs``, which the rules read too: each record gives
its stage, its device and its cost (``Job.cost``, which calls the cost functions here);
``tests/test_plan.py`` checks that their counts and paths equal those of ``snakemake -n``
rule by rule, ``tests/test_jobs.py`` that every rule has a record. This module never imports snakemake and
never reads a config file: it takes the dict that ``symflow.configuration.validate``
returns.
The cost of each job comes from its record (``Job.cost``), which calls the cost model in
``symflow.costs``: the rates, each with its source, live there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from symflow import costs
from symflow.jobs import KINDS, STAGE_NAMES


# -- jobs: what the default target asks for (enumerated by symflow.jobs) ----------------------

# the stages of `symflow plan` and their rules, in its order: from the job records (each names its
# stage; symflow.jobs.KINDS, in the order of symflow/jobs.py). A rule of the job graph without a
# record here is an error of plan(), never left out.
def stages() -> dict[str, tuple[str, ...]]:
    """stage -> its rules, from the records registered now (a plug-in's included)."""
    return {stage: tuple(kind.rule for kind in KINDS if kind.stage == stage) for stage in STAGE_NAMES}


STAGES: dict[str, tuple[str, ...]] = stages()
# on a GPU where resources.gpu > 0: the records whose device is "gpu" (compute_gram_block_pack,
# train_sgd_pack, estimate_eta0_pack: every pack's rule, compute_gram_block_pack_<digest>, ...)
GPU_RULES = tuple(kind.rule for kind in KINDS if kind.device == "gpu")


def jobs(config: dict, model=None) -> dict[str, set]:
    """rule -> the jobs (symflow.jobs records) that the default target (rule all) needs,
    from scratch: no output exists yet; with ``data.source: official`` the download and
    extraction of the archive are counted too (offline, put the archive in place first)."""
    from symflow.jobs import Jobs

    return (model or Jobs(config)).walk()


def job_counts(config: dict) -> dict[str, int]:
    """rule -> number of jobs (rules with none left out)."""
    return {rule: len(keys) for rule, keys in jobs(config).items() if keys}


def job_cost(config: dict, job) -> costs.Cost:
    """The cost of one job (a symflow.jobs record): its own :meth:`~symflow.jobs.Job.cost`."""
    return job.cost(config)


# -- the whole plan -----------------------------------------------------------------------------


@dataclass
class RulePlan:
    rule: str
    stage: str
    jobs: int
    hours: float  # device hours: GPU-hours where `gpu`, else CPU core-hours
    gpu: bool
    disk_bytes: float
    longest_s: float
    most_mem_mb: int


@dataclass
class Plan:
    rules: list[RulePlan]
    checkpoint_bytes: float  # peak, if every SGD run held its checkpoint at once
    device: str  # "GPU" or "CPU"
    notes: list[str] = field(default_factory=list)

    def stage_totals(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for r in self.rules:
            t = out.setdefault(r.stage, {"jobs": 0, "gpu_hours": 0.0, "cpu_hours": 0.0, "disk_bytes": 0.0})
            t["jobs"] += r.jobs
            t["gpu_hours" if r.gpu else "cpu_hours"] += r.hours
            t["disk_bytes"] += r.disk_bytes
        return out


def plan(config: dict) -> Plan:
    """Jobs, device hours and disk of the default target on a validated config."""
    gpu = bool(config["resources"]["gpu"])
    rules: list[RulePlan] = []
    from symflow.jobs import Jobs

    model = Jobs(config)
    all_jobs = jobs(config, model)
    known = stages()
    stage_of = {rule: stage for stage, names in known.items() for rule in names}
    unknown = sorted(set(all_jobs) - set(stage_of))
    if unknown:
        raise ValueError(f"symflow.plan: jobs of {', '.join(unknown)} have no record in symflow.jobs.KINDS (no stage)")
    for rule in (name for names in known.values() for name in names):
        keys = all_jobs.get(rule)
        if not keys:
            continue
        each = [job_cost(config, job) for job in keys]
        on_gpu = all(job.on_gpu(config) for job in keys)
        hours = sum(c.seconds * (c.gpus if on_gpu else c.threads) for c in each) / 3600
        rules.append(
            RulePlan(
                rule,
                stage_of[rule],
                len(keys),
                hours,
                on_gpu,
                sum(c.disk_bytes for c in each),
                max(c.seconds for c in each),
                max(c.mem_mb for c in each),
            )
        )
    runs = [*all_jobs.get("train_sgd", ()), *(r for p in all_jobs.get("train_sgd_pack", ()) for r in p.runs)]
    ckpt = sum(costs.checkpoint_bytes(config, run.arch, run.width) for run in runs)
    notes = [
        "SGD hours expect a run to reach 100% train accuracy in its architecture's measured epochs (RATES['sgd_epochs_to_fit_*']); "
        "runtime limits are sized from the budget (sgd.max_steps, sgd.max_epochs).",
    ]
    if gpu:
        notes.append(
            "GPU hours are H200-hours from rates measured on one H200 (RATES['h200_*'], bench/gpu_checks.sh): "
            f"FLOP/byte counts at its measured peak and bandwidth with {costs.GPU_KERNEL_EFFICIENCY:.0%} efficiency for "
            f"GAP/LAP kernels ({costs.GPU_KERNEL_EFFICIENCY_SMALL_STATE:.2%} for the others), "
            f"{costs.GPU_SGD_GFLOPS / 1e3:.0f} TFLOP/s for SGD and at least {costs.GPU_STEP_FLOOR_S * 1e3:g} ms a step (assumed), "
            f"{costs.GPU_JOB_START_S:g} s to start a GPU job (assumed: the CPU figure)."
        )
    packs = all_jobs.get("train_sgd_pack", ())
    if packs:
        sizes = sorted(len(p.runs) for p in packs)
        gain = (
            f"on a GPU a pack is priced with the per-step floor paid once for its runs (assumed, not yet measured: "
            f"bench/gpu_checks.sh measures packed/single)"
            if gpu
            else f"on CPU a pack trains at {costs.CPU_PACK_RATE:g}x the rate of its runs one after another (measured, "
            f"RATES['cpu_pack_rate']): sgd.pack 1 is faster there"
        )
        eta0_packs = all_jobs.get("estimate_eta0_pack", ())
        eta0s = sum(len(p.eta0s) for p in eta0_packs)
        notes.append(
            f"sgd.pack {config['sgd']['pack']}: {sum(sizes)} runs in {len(packs)} packed jobs of {sizes[0]}-{sizes[-1]} "
            f"runs; {gain}; {eta0s} eta0 estimates in {len(eta0_packs)} jobs, one start-up each."
        )
    block_packs = all_jobs.get("compute_gram_block_pack", ())
    if block_packs:
        packed = sum(len(p.blocks) for p in block_packs)
        alone = len(all_jobs.get("compute_gram_block", ()))
        longest = max(job_cost(config, p).seconds for p in block_packs)
        notes.append(
            f"kernels.pack_minutes {config['kernels']['pack_minutes']:g}: {packed} kernel blocks in {len(block_packs)} "
            f"packed jobs (one process each, its blocks one after another: one start-up, runtime for the series, "
            f"longest {_duration(longest)}), {alone} alone."
        )
    cap = config["resources"].get("max_runtime", 0)
    if cap:
        resumable = [j for rule in ("train_sgd", "train_sgd_pack", "train_imagenet") for j in all_jobs.get(rule, ())]
        attempts = max((costs.resume_attempts(config, j, cap) for j in resumable), default=1)
        over = sorted({r.rule for r in rules if r.rule not in ("train_sgd", "train_sgd_pack", "train_imagenet")
                       and 60 * cap < r.longest_s * costs.RUNTIME_MARGIN})
        notes.append(
            f"resources.max_runtime {cap:g} min: every runtime request is capped there; a training job resumes from "
            f"its checkpoint in its next attempt, up to {attempts} attempts (its rule's retries)"
            + (f"; jobs of {', '.join(over)} cannot resume and may not finish within it: raise it" if over else "")
            + "."
        )
    flip_m, flip_dataset = model.flip_m, model.flip_dataset
    if flip_m:
        notes.append(
            f"experiments.fig4.flip: the m = {flip_m} point has its own dataset "
            f"({flip_dataset}); its kernel blocks are all computed anew, including those of the "
            "unflipped half."
        )
    if config["data"]["source"] == "official":
        notes.append("data.source official: download_cifar10 needs the internet (or the archive put in place).")
    if model.imagenet:
        inet = model.imagenet
        rate = inet["resources"]["per_gpu_rate"]
        where = ("imagenet.resources.per_gpu_rate" if rate else
                 "the flax example's published V100 rate, RATES['imagenet_resnet50_images_per_s']")
        rate = rate or costs.RATES["imagenet_resnet50_images_per_s"].value
        gpus = inet["resources"]["gpus_per_job"]
        notes.append(
            f"ImageNet: {len(model.imagenet_runs())} training runs, "
            + (f"each on {gpus} GPUs (GPU-hours = wall hours x GPUs)" if gpus else "on CPU (gpus_per_job 0)")
            + f", at {rate:,.0f} ResNet-50 images/s per GPU ({where}), other models scaled by forward FLOPs; "
            f"convert_imagenet needs the user's ILSVRC2012 in {inet['root']}."
        )
    return Plan(rules, ckpt, "GPU" if gpu else "CPU", notes)


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_plan(p: Plan, rules: bool = True) -> str:
    """The plan as a table: one line per stage (and per rule), device hours, disk."""
    lines = []
    head = f"{'stage / rule':<26} {'jobs':>9} {'GPU-hours':>11} {'CPU-hours':>11} {'disk':>10}"
    lines += [head, "-" * len(head)]
    totals = {"jobs": 0, "gpu_hours": 0.0, "cpu_hours": 0.0, "disk_bytes": 0.0}
    stage_totals = p.stage_totals()
    for stage in STAGES:
        if stage not in stage_totals:
            continue
        t = stage_totals[stage]
        for k in totals:
            totals[k] += t[k]
        lines.append(
            f"{stage:<26} {int(t['jobs']):>9,} {t['gpu_hours']:>11,.1f} {t['cpu_hours']:>11,.1f} {_bytes(t['disk_bytes']):>10}"
        )
        if rules:
            for r in p.rules:
                if r.stage != stage:
                    continue
                gh, ch = (r.hours, 0.0) if r.gpu else (0.0, r.hours)
                extra = f"   longest {_duration(r.longest_s)}, mem up to {r.most_mem_mb / 1000:.1f} GB"
                lines.append(
                    f"  {r.rule:<24} {r.jobs:>9,} {gh:>11,.1f} {ch:>11,.1f} {_bytes(r.disk_bytes):>10}"
                    + (extra if r.longest_s else "")
                )
    lines.append("-" * len(head))
    lines.append(
        f"{'total':<26} {int(totals['jobs']):>9,} {totals['gpu_hours']:>11,.1f} {totals['cpu_hours']:>11,.1f} "
        f"{_bytes(totals['disk_bytes']):>10}"
    )
    lines.append(
        f"checkpoints while SGD runs are in flight: up to {_bytes(p.checkpoint_bytes)} (removed when a run ends)"
    )
    lines += [f"note: {n}" for n in p.notes]
    return "\n".join(lines)
