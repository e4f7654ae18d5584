"""What a validated config asks for, counted before anything runs, and what each job needs.

Two uses, one set of numbers:

* the workflow's rules take their resources from here (``resources(config, rule, ...)``:
  ``mem_mb`` and ``runtime`` in minutes, sized from the config's block size, widths,
  step cap and resolution, and scaled by Snakemake's ``attempt`` so a retry gets more);
* ``symflow plan`` counts the jobs of the default target per rule and per stage, and
  sums their estimated compute hours and disk (``plan(config)``, ``format_plan``).

The job enumeration mirrors ``workflow/rules/common.smk`` (targets of each figure, kernel
reuse under Thm 4.1, blocks of a regression); ``tests/test_plan.py`` checks that its counts
equal those of ``snakemake -n`` rule by rule. This module never imports snakemake and
never reads a config file: it takes the dict that ``symflow.configuration.validate``
returns.

Where the cost numbers come from (each constant below names its source):

* CPU rates were measured on the 2-core development machine: the kernel engine in
  ``bench/results/kernel_bench.csv`` (``bench/kernel_bench.py``), SGD steps in
  ``bench/README.md`` (``bench/train_bench.py``), numpy's ``eigh`` by a one-off timing
  (recorded at ``CPU_EIGH_GFLOPS``).
* No GPU was available when these were written. GPU times are *assumed*, derived from
  FLOP and byte counts (``symflow.engine.cost_per_pair`` for the kernels, layer shapes
  for the networks) and the stated throughputs of an NVIDIA A100 (``GPU_*``), with the
  efficiency the engine reached on CPU. Measure a few jobs (their ``benchmarks/*.tsv``)
  and correct the constants before trusting GPU-hours to better than a factor of a few.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

# -- measured and assumed throughputs -------------------------------------------------------

# Kernel engine on CPU, one job: flops_per_pair x engine_pairs_per_s over the 18 rows of
# bench/results/kernel_bench.csv (6 architectures x 8/16/32 px) spans 2.5-8.1 GFLOP/s,
# median 4.4; the runtime limit uses the median and a margin (RUNTIME_MARGIN).
CPU_KERNEL_GFLOPS = 4.4
# neural-tangents (kernels.backend: nt, and plug-ins the engine declines) against the engine,
# same CSV, column `ratio`: 2.8-6.3x where both carry the same state (FCN, VEC, LCN), 34-45x for
# GAP, 37-1774x for LAP (there nt carries every pixel pair, the engine only the pooled offsets:
# counted in _nt_entries, the rest of the gap is this factor).
NT_SLOWDOWN_SAME_STATE = 6.0
NT_SLOWDOWN_PIXEL_PAIRS = 45.0
# Assumed GPU (an H200 was measured later, bench/README.md "On a GPU"; the A100 figures are
# kept as the conservative default): NVIDIA A100 40 GB, FP32 (non-tensor-core) peak and HBM
# bandwidth from its datasheet; the engine is assumed to reach the same fraction of its
# roofline as on CPU (bench CSV column engine_fraction_of_limit: 0.11-0.62, median 0.30).
GPU_PEAK_GFLOPS = 19_500.0
GPU_BANDWIDTH_GBS = 1_555.0
GPU_KERNEL_EFFICIENCY = 0.30

# SGD on CPU, one 1-thread job, sustained GFLOP/s of a training step (bench/README.md,
# "Sizing the default step caps": conv width 32 at 8x8 ~60 ms/step = ~17 GFLOP/s; LCN-8
# ~125 ms/step = ~0.5 GFLOP/s: locally connected layers run as patches + einsum).
CPU_SGD_GFLOPS = 15.0
CPU_SGD_GFLOPS_LOCAL = 0.5
# Assumed GPU SGD: 10 TFLOP/s sustained for conv/dense layers at batch 40 (about half an
# A100's TF32 tensor-core rate after XLA's overheads), 10x less for locally connected layers,
# and at least GPU_STEP_FLOOR_S per step (kernel launches of ~50 layers forward and backward).
GPU_SGD_GFLOPS = 10_000.0
GPU_SGD_GFLOPS_LOCAL = 1_000.0
GPU_STEP_FLOOR_S = 0.002

# Kernel regression: numpy eigh (LAPACK syevd, float64), counted as 10 m^3 flop: measured
# 22.7-25.4 GFLOP/s per thread (CPU time) at m = 1000 and 2000 on the development machine.
CPU_EIGH_GFLOPS = 20.0

# Every job: process start-up (JAX, neural-tangents imports; bench/README.md: ~5 s) and slack.
JOB_OVERHEAD_S = 20.0
# Runtime limits: RUNTIME_MARGIN x the estimate + RUNTIME_FLOOR_MIN minutes, x attempt.
RUNTIME_MARGIN = 3.0
RUNTIME_FLOOR_MIN = 10
# Memory: a JAX process before it holds data (measured RSS after importing jax + nt ~0.6 GB;
# with XLA's compilation buffers 1-1.5 GB).
BASE_MEM_MB = 1500

IMAGE_CHANNELS = 3
NUM_CLASSES = 10


# -- jobs: what the default target asks for ----------------------------------------------------

STAGES: dict[str, tuple[str, ...]] = {
    "data": ("download_cifar10", "extract_cifar10", "transform_dataset"),
    "kernel blocks": ("compute_gram_block", "audit_symmetry_pair", "audit_kernel_equality", "gather_symmetry_audit"),
    "regression": ("fit_kernel_regression",),
    "eta0": ("estimate_eta0",),
    "sgd": ("train_sgd", "average_ensemble", "compute_s_dist"),
    "figures": ("aggregate_runs", "gather_s_dist", "plot_figure", "plot_figS2", "write_report_tables",
                "evaluate_claims", "list_failed_runs", "all"),
}
GPU_RULES = ("compute_gram_block", "estimate_eta0", "train_sgd")
FIGURES = ("fig2", "fig3", "fig4", "figS1", "figS5", "figS6")
TABLES = ("fig2", "fig3", "fig4", "figS5", "figS6")  # gathered by aggregate_runs (Fig. S1's by gather_s_dist)
FIGS1_GAP_T = 0.0  # Fig. S1's GAP_n ensembles train on the clean end of the path


def _width(config: dict, arch: str) -> int:
    from symflow.architectures import ARCHITECTURES

    return int(config["sgd"]["widths"].get(arch, ARCHITECTURES.get(arch).default_width))


def _kernels(config: dict) -> list[str]:
    return list(config["regression"]["kernels"])


def fig4_sizes(config: dict) -> list[int]:
    flip_m = flip_point(config)[0]
    return list(config["experiments"]["fig4"]["m"]) + ([flip_m] if flip_m else [])


def figS1_transforms(config: dict) -> list[str]:
    from symflow.groups import spec_id

    return [spec_id("so3_path", t) for t in config["experiments"]["figS1"]["t"]]


def figS1_ensembles(config: dict) -> set[tuple]:
    """(arch, width, transform, recipe, m, seed, k) of Fig. S1's ensembles: VEC_n along the path
    and the GAP_n references at its clean end."""
    from symflow.groups import spec_id

    f = config["experiments"]["figS1"]
    out = {("VEC", n, t, f["recipe"], f["m"], f["seed"], f["ensemble"]) for n in f["widths"]
           for t in figS1_transforms(config)}
    gap_t = spec_id("so3_path", FIGS1_GAP_T)
    out |= {("GAP", n, gap_t, f["recipe"], f["m"], f["seed"], f["ensemble"]) for n in f["widths"]}
    return out


def kernel_pairs(config: dict) -> set[tuple]:
    """(arch, transform, seed) of every kernel the experiments ask for: each is audited."""
    return {(a, t, s) for a, t, s, _, _ in regressions(config)}


def regressions(config: dict) -> set[tuple]:
    """(arch, transform, seed, m, kernel) of every kernel regression the figures ask for."""
    e, kernels = config["experiments"], _kernels(config)
    out: set[tuple] = set()
    f = e["fig2"]
    out |= {
        (a, t, s, f["m"], k) for a in f["architectures"] for t in f["transforms"] for s in f["seeds"] for k in kernels
    }
    f = e["fig3"]
    out |= {("VEC", t, s, f["m"], "ntk") for t in f["transforms"] for s in f["seeds"]}
    out |= {("VEC", "identity", s, m, k) for s in e["fig4"]["seeds"] for m in fig4_sizes(config) for k in kernels}
    f = e["figS1"]
    out |= {("VEC", t, f["seed"], f["m"], "ntk") for t in figS1_transforms(config)}  # VEC_inf of the S-Dist
    f = e["figS6"]
    out |= {
        (a, t, s, m, k)
        for a in f["architectures"]
        for t in f["transforms"]
        for s in f["seeds"]
        for m in f["m"]
        for k in kernels
    }
    return out


def sgd_runs(config: dict) -> set[tuple]:
    """(arch, width, init, transform, recipe, m, seed, member) of every SGD run the figures ask for."""
    e = config["experiments"]
    w = functools.partial(_width, config)
    out: set[tuple] = set()
    f = e["fig2"]
    out |= {
        (a, w(a), "gaussian", t, r, f["m"], s, 0)
        for a, r in fig2_trained(f)
        for t in f["transforms"]
        for s in f["seeds"]
    }
    f = e["fig3"]
    out |= {
        ("VEC", n, "gaussian", t, r, f["m"], s, 0)
        for t in f["transforms"]
        for s in f["seeds"]
        for n in f["widths"]
        for r in f["recipes"]
    }
    f = e["fig4"]
    for s in f["seeds"]:
        for m in fig4_sizes(config):
            for a, t in (("VEC", "identity"), ("LCN", "identity"), ("VEC", "o3_pixel")):
                out.add((a, w(a), "gaussian", t, f["recipe"], m, s, 0))
    f = e["figS5"]
    out |= {
        (a, w(a), init, t, r, f["m"], s, 0)
        for a in f["architectures"]
        for t in f["transforms"]
        for r in f["recipes"]
        for s in f["seeds"]
        for init in ("gaussian", "uniform")
    }
    out |= {
        (a, n, "gaussian", t, r, m, s, i) for a, n, t, r, m, s, k in figS1_ensembles(config) for i in range(k)
    }
    return out


def reuses_untransformed(config: dict, arch: str, transform: str) -> bool:
    """Does a kernel on `transform` data come from the untransformed blocks (Thm 4.1)?"""
    from symflow.architectures import ARCHITECTURES
    from symflow.groups import parse_spec

    spec = parse_spec(transform)
    return bool(
        config["kernels"]["reuse_invariant"]
        and spec.group != "identity"
        and ARCHITECTURES.get(arch).claims(spec.group, infinite=True)
    )


def kernel_source(config: dict, arch: str, transform: str, seed: int) -> tuple[str, int]:
    """(transform, seed) of the data whose blocks serve a kernel on `transform` data."""
    from symflow.groups import canonical_seed

    if reuses_untransformed(config, arch, transform):
        return "identity", 0
    return transform, canonical_seed(transform, int(seed))


def datasets(config: dict) -> tuple[str, str]:
    """(the experiments' dataset id, Fig. S2's dataset id)."""
    from symflow.configuration import dataset_id

    data = config["data"]
    return dataset_id(data), dataset_id({**data, "resolution": config["figS2"]["resolution"] or data["resolution"]})


def fig2_trained(fig2: dict) -> list[tuple[str, str]]:
    """(architecture, recipe) of Fig. 2's finite networks: every architecture with every
    recipe, unless ``recipe_architectures`` names the architectures of a recipe."""
    chosen = fig2.get("recipe_architectures") or {}
    return [(a, r) for r in fig2["recipes"] for a in fig2["architectures"] if a in (chosen.get(r) or fig2["architectures"])]


def flip_point(config: dict) -> tuple[int | None, str]:
    """(m of Fig. 4's flipped point, or None without experiments.fig4.flip; its dataset id)."""
    from symflow.configuration import dataset_id

    data = config["data"]
    return (2 * data["n_train"] if config["experiments"]["fig4"]["flip"] else None), dataset_id({**data, "flip": True})


def jobs(config: dict) -> dict[str, set[tuple]]:
    """rule -> the keys of its jobs that the default target (rule all) needs, from scratch.

    From scratch means: no output exists yet; with ``data.source: official`` the download
    and extraction of the archive are counted too (offline, put the archive in place first).
    """
    from symflow.groups import canonical_seed, spec_id
    from symflow.kernels import block_size_for, blocks_for

    data = config["data"]
    dataset, figs2_dataset = datasets(config)
    n_val, n_test = data["n_val"], data["n_test"]
    out: dict[str, set[tuple]] = {name: set() for rules in STAGES.values() for name in rules}

    def data_key(transform: str, seed: int, ds: str = dataset) -> tuple:
        return (ds, transform, canonical_seed(transform, int(seed)))

    flip_m, flip_dataset = flip_point(config)

    def dataset_of(m: int) -> str:
        """Fig. 4's flipped point (m = 2 n_train, no other m is that large) has its own data."""
        return flip_dataset if m == flip_m else dataset

    for arch, transform, seed, m, kernel in regressions(config):
        out["fit_kernel_regression"].add((arch, transform, seed, m, kernel))
        src, src_seed = kernel_source(config, arch, transform, seed)
        ds = dataset_of(m)
        out["transform_dataset"].add(data_key(src, src_seed, ds))
        bs = block_size_for(config["kernels"]["block_size"], arch)
        for split, i, j in blocks_for(int(m), bs, n_val, n_test):
            out["compute_gram_block"].add((arch, src, src_seed, bs, split, i, j, ds))
    for arch, transform, seed in kernel_pairs(config):
        out["audit_symmetry_pair"].add((arch, transform, seed))
        out["transform_dataset"] |= {data_key("identity", 0), data_key(transform, seed)}
    from symflow.architectures import ARCHITECTURES

    out["audit_kernel_equality"] |= {(a.name, b) for a in ARCHITECTURES for b in a.same_kernel_as}
    out["gather_symmetry_audit"].add(("audit",))
    for run in sgd_runs(config):
        arch, width, init, transform, recipe, m, seed, member = run
        out["train_sgd"].add(run)
        out["estimate_eta0"].add((arch, width, init, transform, m, seed, member))
        out["transform_dataset"].add(data_key(transform, seed, dataset_of(m)))
    figs2 = list(config["figS2"]["transforms"]) + [spec_id("so3_path", t) for t in config["path_t"]]
    out["transform_dataset"] |= {data_key(t, config["figS2"]["seed"], figs2_dataset) for t in figs2}
    out["plot_figS2"].add(("figS2",))
    for arch, width, transform, recipe, m, seed, k in figS1_ensembles(config):
        out["average_ensemble"].add((arch, width, transform, recipe, m, seed, k))
        if arch == "VEC":
            out["compute_s_dist"].add((arch, width, transform, recipe, m, seed, k))
    out["gather_s_dist"].add(("figS1",))
    out["aggregate_runs"] |= {(t,) for t in ("runs",) + TABLES}
    out["plot_figure"] |= {(f,) for f in FIGURES}
    out["write_report_tables"].add(("report",))
    out["evaluate_claims"].add(("claims",))
    out["list_failed_runs"].add(("failed_runs",))
    out["all"].add(("all",))
    if data["source"] == "official":
        out["download_cifar10"].add(("archive",))
        out["extract_cifar10"].add(("archive",))
    return out


def job_counts(config: dict) -> dict[str, int]:
    """rule -> number of jobs (rules with none left out)."""
    return {rule: len(keys) for rule, keys in jobs(config).items() if keys}


# -- costs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """One job: estimated seconds of its device (a GPU where `gpu`, else `threads` CPU cores),
    peak host memory, bytes it leaves on disk."""

    seconds: float
    mem_mb: int
    disk_bytes: float = 0.0
    threads: int = 1
    gpu: bool = False


def _hp(config: dict):
    from symflow.architectures import ModelHP

    return ModelHP.from_config(config["model"])


def _shape(config: dict) -> tuple[int, int, int]:
    r = config["data"]["resolution"]
    return (r, r, IMAGE_CHANNELS)


@functools.lru_cache(maxsize=256)
def _pair_cost(arch: str, hp, shape: tuple[int, int, int], itemsize: int) -> dict:
    """The engine's flops, bytes and state per pair; for an architecture it does not
    implement, the most a spatial readout can need (every pixel pair)."""
    from symflow import engine
    from symflow.architectures import ARCHITECTURES

    if engine.supports(arch):
        out = dict(engine.cost_per_pair(arch, hp, shape, itemsize))
        out["state"] = engine.state_bytes_per_pair(arch, hp, shape, itemsize)
        return out
    h, w, c = shape
    entries = (h * w) ** 2 if ARCHITECTURES.get(arch).spatial else 1
    taps = 2 * (hp.filter_size - 1)
    flops = entries * (2 * c * hp.filter_size**2 + hp.depth * (37 + 2 * taps + 2) + 4)
    return {
        "flops": flops,
        "bytes": entries * itemsize * (2 + 4 * hp.depth),
        "entries": entries,
        "state": 5 * entries * itemsize,
    }


def _nt_entries(config: dict, arch: str) -> tuple[int, bool]:
    """State entries per pair as neural-tangents carries them, and whether that is every pixel
    pair: where the readout needs pairs of different pixels, nt keeps all (HW)^2 of them."""
    h, w, _ = _shape(config)
    e = _pair_cost(arch, _hp(config), _shape(config), 4)["entries"]
    if e > h * w:
        return (h * w) ** 2, True
    return e, False


def _itemsize(config: dict) -> int:
    return 8 if config["kernels"]["dtype"] == "float64" else 4


def kernel_seconds_per_pair(config: dict, arch: str, gpu: bool | None = None) -> float:
    """Estimated seconds per (NNGP + NTK) pair of `arch` on the config's device and backend."""
    gpu = bool(config["resources"]["gpu"]) if gpu is None else gpu
    cost = _pair_cost(arch, _hp(config), _shape(config), _itemsize(config))
    if gpu:
        seconds = max(cost["flops"] / (GPU_PEAK_GFLOPS * 1e9), cost["bytes"] / (GPU_BANDWIDTH_GBS * 1e9))
        seconds /= GPU_KERNEL_EFFICIENCY
    else:
        seconds = cost["flops"] / (CPU_KERNEL_GFLOPS * 1e9)
    from symflow import engine

    if config["kernels"]["backend"] == "nt" or not engine.supports(arch):
        entries, pairs = _nt_entries(config, arch)
        seconds *= entries / cost["entries"] * (NT_SLOWDOWN_PIXEL_PAIRS if pairs else NT_SLOWDOWN_SAME_STATE)
    return seconds


def _data_bytes(config: dict, resolution: int | None = None) -> float:
    d = config["data"]
    r = resolution or d["resolution"]
    n = d["n_train"] + d["n_val"] + d["n_test"]
    return n * (4 * r * r * IMAGE_CHANNELS + 4 * NUM_CLASSES + 8)


def _block_rows(config: dict, split: str, i: int, bs: int) -> int:
    n_rows = {"train": bs * (i + 1), "val": config["data"]["n_val"], "test": config["data"]["n_test"]}[split]
    return max(1, min(bs, n_rows - i * bs))


def gram_block_cost(config: dict, arch: str, bs: int, split: str = "train", i: int = 0) -> Cost:
    """A B x B block (fewer rows for the last val/test block): NNGP and NTK."""
    rows = _block_rows(config, split, int(i), int(bs))
    pairs = rows * int(bs)
    gpu = bool(config["resources"]["gpu"])
    item = _itemsize(config)
    seconds = JOB_OVERHEAD_S + pairs * kernel_seconds_per_pair(config, arch, gpu)
    out_bytes = 2 * pairs * item
    # working memory: the engine's tiles hold ~16 MB of state (symflow.engine._TILE_BYTES), a
    # few of them at once; neural-tangents holds batch_size^2 pairs of its state in float64-sized
    # temporaries (about a dozen arrays)
    from symflow import engine

    if config["kernels"]["backend"] == "nt" or not engine.supports(arch):
        entries, _ = _nt_entries(config, arch)
        working = config["kernels"]["batch_size"] ** 2 * entries * 8 * 12
    else:
        cost = _pair_cost(arch, _hp(config), _shape(config), item)
        working = 4 * max(16 << 20, cost["state"]) + 4 * bs * cost["state"] / max(1, cost["entries"])
    mem = BASE_MEM_MB + (_data_bytes(config) + 2 * out_bytes + working) / 1e6
    return Cost(seconds, int(mem), out_bytes + 4096, int(config["kernels"]["threads"]), gpu)


def regression_cost(config: dict, m: int) -> Cost:
    """Assemble the blocks (float64) and solve the ridge grid from one eigendecomposition."""
    d, m = config["data"], int(m)
    rest = d["n_val"] + d["n_test"]
    threads = int(config["regression"]["threads"])
    flop = 10.0 * m**3 + 2.0 * m * m * rest + 2.0 * len(config["regression"]["ridge_grid"]) * rest * m * NUM_CLASSES
    seconds = JOB_OVERHEAD_S + flop / (CPU_EIGH_GFLOPS * 1e9 * threads)
    # K_train, its mirrored copy, eigenvectors and LAPACK's workspace: ~4 m^2; val and test rows twice
    mem = BASE_MEM_MB + 8 * (4 * m * m + 2 * m * rest) / 1e6
    disk = 8 * rest * NUM_CLASSES + 4096
    return Cost(seconds, int(mem), disk, threads, False)


def network_size(config: dict, arch: str, width: int) -> dict[str, float]:
    """Forward GFLOP per example, parameters, largest layer and activations per example of a
    finite network, from the registry's description (dense, convolutional or locally connected
    hidden layers; the readout counted as a dense layer on the flattened features, the most a
    pooling readout can have)."""
    from symflow.architectures import ARCHITECTURES

    a = ARCHITECTURES.get(arch)
    model = config["model"]
    r2, n, depth = config["data"]["resolution"] ** 2, int(width), int(model["depth"])
    c, k = IMAGE_CHANNELS, NUM_CLASSES
    if not a.spatial:  # dense layers on the flattened image
        layers = [c * r2 * n] + [n * n] * (depth - 1)
        readout = n * k
        macs = sum(layers) + readout
        acts = depth * n
    else:
        f2 = int(model["filter_size"]) ** 2
        per_pixel = [c * f2 * n] + [f2 * n * n] * (depth - 1)
        local = a.layers == "local"
        layers = [p * r2 for p in per_pixel] if local else per_pixel
        readout = r2 * n * k
        macs = r2 * sum(per_pixel) + readout
        acts = depth * r2 * n
    return {
        "gflop": 2e-9 * macs,
        "params": float(sum(layers) + readout + depth * n),
        "largest": float(max(layers + [readout])),
        "activations": float(acts),
        "local": a.layers == "local",
    }


def _sgd_rate(config: dict, local: bool) -> float:
    if config["resources"]["gpu"]:
        return 1e9 * (GPU_SGD_GFLOPS_LOCAL if local else GPU_SGD_GFLOPS)
    return 1e9 * (CPU_SGD_GFLOPS_LOCAL if local else CPU_SGD_GFLOPS)


def sgd_cost(config: dict, arch: str, width: int, m: int) -> Cost:
    """A run to its budget (sgd.max_steps and sgd.max_epochs; an upper bound: runs stop early
    at 100% training accuracy)."""
    from symflow.train import step_budget
    s, d = config["sgd"], config["data"]
    net = network_size(config, arch, width)
    m = int(m)
    batch = min(s["batch_size"], m)
    steps = step_budget(m, s["batch_size"], s["max_steps"], s.get("max_epochs"))
    evals = steps // s["eval_every"] + 1
    rate = _sgd_rate(config, net["local"])
    step_s = 3 * batch * net["gflop"] * 1e9 / rate
    if config["resources"]["gpu"]:
        step_s = max(step_s, GPU_STEP_FLOOR_S)
    eval_s = net["gflop"] * 1e9 * (m + d["n_val"] + d["n_test"]) / rate
    seconds = JOB_OVERHEAD_S + steps * step_s + evals * eval_s
    # data on host and device copies, parameters x (params, gradients, momentum, checkpoint),
    # activations of a batch kept for the backward pass (x3 for temporaries)
    mem = BASE_MEM_MB + (2 * _data_bytes(config) + 16 * net["params"] + 3 * 4 * batch * net["activations"]) / 1e6
    rest = d["n_val"] + d["n_test"]
    disk = 4 * rest * NUM_CLASSES + 64 * evals + 4096
    return Cost(seconds, int(mem), disk, int(s["threads"]), bool(config["resources"]["gpu"]))


def checkpoint_bytes(config: dict, arch: str, width: int) -> float:
    """A run's checkpoint: parameters and momentum, float32."""
    return 8 * network_size(config, arch, width)["params"]


def eta0_cost(config: dict, arch: str, width: int, m: int) -> Cost:
    """eta0 = 2 / lambda_max of the empirical NTK on min(lr_estimate_size, m) images."""
    s = config["sgd"]
    net = network_size(config, arch, width)
    n = min(s["lr_estimate_size"], int(m))
    samples = s["lr_estimate_samples"] if s["lr_estimate"] == "mc" else 1
    flop = samples * (3 * NUM_CLASSES * n * net["gflop"] * 1e9 + 2 * NUM_CLASSES * n * n * net["params"])
    seconds = JOB_OVERHEAD_S + flop / _sgd_rate(config, net["local"])
    # Jacobian blocks are bounded at 4 GB (symflow.train.ntk_block_size)
    jacobians = min(4e9, 3 * 2 * 4 * n * NUM_CLASSES * net["largest"])
    mem = BASE_MEM_MB + (_data_bytes(config) + jacobians + 16 * net["params"]) / 1e6
    return Cost(seconds, int(mem), 1024, int(s["threads"]), bool(config["resources"]["gpu"]))


def data_cost(config: dict, resolution: int | None = None) -> Cost:
    """One transformed dataset: read the source batches (uint8 -> float32, a few copies), write."""
    from symflow.data import SOURCE_SIZES

    pool = sum(SOURCE_SIZES[config["data"]["source"]])
    raw = pool * 32 * 32 * IMAGE_CHANNELS
    seconds = JOB_OVERHEAD_S + raw / 20e6  # ~20 MB/s through standardise, downsample and tau
    mem = BASE_MEM_MB + 6 * 4 * raw / 1e6
    return Cost(seconds, int(mem), _data_bytes(config, resolution), 1, False)


def audit_cost(config: dict, arch: str) -> Cost:
    """Kernels of audit_size images on the identity and the transformed data, float64."""
    n = int(config["kernels"]["audit_size"])
    cpu = {**config, "kernels": {**config["kernels"], "dtype": "float64", "backend": "nt"}}
    seconds = JOB_OVERHEAD_S + 2 * n * n * kernel_seconds_per_pair(cpu, arch, gpu=False)
    entries, _ = _nt_entries(config, arch)
    mem = BASE_MEM_MB + (2 * _data_bytes(config) + n * n * entries * 8 * 12) / 1e6
    return Cost(seconds, int(mem), 4096, 1, False)


SMALL = Cost(JOB_OVERHEAD_S, 2000, 100e3)  # tables, figures, report (they read only small tables)
ARCHIVE_BYTES = 170_498_071  # cifar-10-python.tar.gz
DOWNLOAD = Cost(600.0, 1000, ARCHIVE_BYTES)
EXTRACT = Cost(120.0, 2000, 185e6)


def job_cost(config: dict, rule: str, key: tuple) -> Cost:
    """The cost of one job of `rule` (key as in :func:`jobs`)."""
    if rule == "compute_gram_block":
        arch, _, _, bs, split, i = key[:6]
        return gram_block_cost(config, arch, bs, split, i)
    if rule == "fit_kernel_regression":
        return regression_cost(config, key[3])
    if rule == "train_sgd":
        arch, width, _, _, _, m, _, _ = key
        return sgd_cost(config, arch, width, m)
    if rule == "estimate_eta0":
        arch, width, _, _, m, _, _ = key
        return eta0_cost(config, arch, width, m)
    if rule == "transform_dataset":
        from symflow.configuration import parse_dataset_id

        return data_cost(config, parse_dataset_id(key[0])["resolution"])
    if rule in ("audit_symmetry_pair", "audit_kernel_equality"):
        return audit_cost(config, key[0])
    if rule == "download_cifar10":
        return DOWNLOAD
    if rule == "extract_cifar10":
        return EXTRACT
    if rule == "all":
        return Cost(0.0, 0)
    return SMALL


# -- resources of a job, for the rules ---------------------------------------------------------


def runtime_minutes(cost: Cost, attempt: int = 1) -> int:
    """Wall-time limit: a margin over the estimate, more on every retry."""
    return int(math.ceil((RUNTIME_FLOOR_MIN + RUNTIME_MARGIN * cost.seconds / 60.0) * max(1, int(attempt))))


def mem_mb(cost: Cost, attempt: int = 1) -> int:
    """Memory limit: the estimate, and once more of it on every retry."""
    return int(math.ceil(cost.mem_mb * max(1, int(attempt))))


def resources(cost: Cost, attempt: int = 1) -> dict[str, int]:
    return {"mem_mb": mem_mb(cost, attempt), "runtime": runtime_minutes(cost, attempt)}


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
    all_jobs = jobs(config)
    stage_of = {rule: stage for stage, names in STAGES.items() for rule in names}
    for rule, keys in all_jobs.items():
        if not keys:
            continue
        costs = [job_cost(config, rule, key) for key in keys]
        on_gpu = gpu and rule in GPU_RULES
        hours = sum(c.seconds * (1 if on_gpu else c.threads) for c in costs) / 3600
        rules.append(
            RulePlan(
                rule,
                stage_of[rule],
                len(keys),
                hours,
                on_gpu,
                sum(c.disk_bytes for c in costs),
                max(c.seconds for c in costs),
                max(c.mem_mb for c in costs),
            )
        )
    ckpt = sum(checkpoint_bytes(config, run[0], run[1]) for run in all_jobs["train_sgd"])
    notes = [
        "SGD hours are at the budget (sgd.max_steps, sgd.max_epochs); runs that reach 100% training accuracy stop earlier.",
    ]
    if gpu:
        notes.append(
            "GPU hours are for an assumed A100: FLOP/byte counts at its FP32 peak and bandwidth with "
            f"{GPU_KERNEL_EFFICIENCY:.0%} efficiency for kernels, {GPU_SGD_GFLOPS / 1e3:.0f} TFLOP/s for SGD "
            "(symflow/plan.py says where each number comes from). Measured on an H200 (bench/README.md): "
            "GAP kernels at 32x32 ran at 31% of its limit; SGD at about 125 TFLOP/s, so SGD hours are an upper bound."
        )
    flip_m, flip_dataset = flip_point(config)
    if flip_m:
        notes.append(
            f"experiments.fig4.flip: the m = {flip_m} point has its own dataset "
            f"({flip_dataset}); its kernel blocks are all computed anew, including those of the "
            "unflipped half."
        )
    if config["data"]["source"] == "official":
        notes.append("data.source official: download_cifar10 needs the internet (or the archive put in place).")
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
