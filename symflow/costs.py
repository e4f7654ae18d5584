"""The cost model: what one job needs (seconds of its device, memory, disk) and the resources
a rule asks for, from a validated config and a job's own fields.

The job records of ``symflow.jobs`` call these functions from their ``cost`` methods; the
rules take their ``mem_mb``, ``runtime`` and retries from here through the records; and
``symflow.plan`` sums the costs of every job of the default target. This module never imports
``symflow.jobs`` (the records import it) and never reads a config file.

Where the cost numbers come from (each constant below names its source):

* CPU rates were measured on the 2-core development machine: the kernel engine in
  ``bench/results/kernel_bench.csv`` (``bench/kernel_bench.py``), SGD steps in
  ``bench/README.md`` (``bench/train_bench.py``), numpy's ``eigh`` by a one-off timing
  (recorded at ``CPU_EIGH_GFLOPS``).
* GPU times are H200-hours, derived from FLOP and byte counts (``symflow.engine.cost_per_pair``
  for the kernels, layer shapes for the networks) and the peak, bandwidth, kernel efficiency
  and SGD throughput measured on one NVIDIA H200 (``RATES['h200_*']``, bench/gpu_checks.sh);
  the per-step floor and the locally connected layers' rate are still assumed. Measure a few
  jobs (their ``benchmarks/*.tsv``) and correct the constants before trusting GPU-hours to
  better than a factor of two.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from symflow.configuration import ConfigError

# -- measured and assumed rates: one table, each entry says where it comes from ---------------


@dataclass(frozen=True)
class Rate:
    """A number the plan's costs are made of, with where it was measured (the command, the
    machine, the date) or, for an assumption, why."""

    name: str
    value: float
    unit: str
    source: str


DEV = "the 2-core development machine (2 vCPU, 24 GB)"
H200 = "one NVIDIA H200, bash bench/gpu_checks.sh, 2026-11-30"
CAL = "the default make run's job logs (process CPU time, symflow.logs), bench/plan_vs_run.py --rules, 2026-12-01"
# The CPU rates were refitted on 2026-12-07 from a fresh clone's `make run` of the default on the 2-core machine
# with nothing else running (checked: `ps` showed only the run's snakemake and its two jobs; the load average
# stayed at the jobs' own ~2-5 threads), 906 jobs in 38 min 7 s; the earlier fits came from runs on a machine
# shared with other work, and the plan was 2.5-3.1x the quiet run per stage.
QUIET = ("the default make run on a quiet 2-core machine (job logs, process CPU time, bench/plan_vs_run.py --rules, "
         "2026-12-07)")
RATES: dict[str, Rate] = {
    r.name: r
    for r in [
        Rate("cpu_kernel_gflops", 20.0, "GFLOP/s per 1-thread job",
             f"kernel engine in the default's block packs (55 packs of GAP, LAP4, VEC, LCN and FCN blocks at 8 x 8; "
             f"median 26.7 CPU s a pack, a JAX start-up included): {QUIET}. (bench/kernel_bench.py measured 2.5-8.1 "
             f"GFLOP/s, median 4.4, over 6 architectures x 8/16/32 px on {DEV} with other work beside it, "
             "bench/results/kernel_bench.csv; the rate was 6.5 from it, and the plan 3.05x the run)"),
        Rate("nt_slowdown_same_state", 6.0, "x the engine",
             "neural-tangents where it carries the engine's state (FCN, VEC, LCN: 2.8-6.3x), same CSV, column ratio"),
        Rate("nt_slowdown_pixel_pairs", 45.0, "x the engine per entry",
             "neural-tangents where it carries every pixel pair (GAP 34-45x, LAP more), same CSV"),
        Rate("gpu_peak_gflops", 19_500.0, "GFLOP/s", "assumed: NVIDIA A100 40 GB FP32 (non-tensor-core) datasheet peak"),
        Rate("gpu_bandwidth_gbs", 1_555.0, "GB/s", "assumed: NVIDIA A100 40 GB HBM datasheet bandwidth"),
        Rate("gpu_kernel_efficiency", 0.30, "of the roofline",
             "assumed: the engine's median fraction of its CPU roofline (kernel_bench.csv, 0.11-0.62); an H200 "
             "measured GAP at 32 x 32 at 0.31 of its bandwidth limit (bench/README.md, On a GPU)"),
        Rate("cpu_sgd_gflops", 80.0, "GFLOP/s per 1-thread job",
             f"a step of batch 40 and its share of evaluations (VEC/FCN at 8 x 8): the default's 149 train_sgd jobs, "
             f"median 8.9 CPU s (est. 28.9 at the earlier 25 GFLOP/s, fitted on a shared machine: 2.82x): {QUIET}"),
        Rate("cpu_sgd_gflops_local", 1.6, "GFLOP/s per 1-thread job",
             f"LCN at 8 x 8 (patches + einsum): bench/train_bench.py's ~125 ms a step for LCN_8 on a shared {DEV}, "
             "scaled by the 3.2x the quiet default run measured for the dense and conv rates (no LCN run in it)"),
        Rate("gpu_sgd_gflops", 10_000.0, "GFLOP/s",
             "assumed: half an A100's TF32 tensor-core rate after XLA's overheads (an H200 measured ~125 TFLOP/s "
             "on wide networks, bench/README.md)"),
        Rate("gpu_sgd_gflops_local", 1_000.0, "GFLOP/s", "assumed: 10x less than conv layers, as on CPU and more"),
        Rate("gpu_step_floor_s", 0.002, "s per step", "assumed: kernel launches of ~50 layers forward and backward"),
        # Measured on one NVIDIA H200 by `bash bench/gpu_checks.sh` (jax 0.11.2, CUDA 13, 2026-11-30; bench/results/gpu/,
        # bench/README.md "On a GPU"). GPU costs use these (GPU_* below); the A100 entries above are the
        # assumptions they replaced, kept for comparison.
        Rate("h200_peak_gflops", 98_793.0, "GFLOP/s", f"{H200}: a 2048^3 float32 matmul (bench/kernel_bench.py)"),
        Rate("h200_bandwidth_gbs", 2_375.0, "GB/s", f"{H200}: a copy of a 268 MB array (bench/kernel_bench.py)"),
        Rate("h200_kernel_efficiency", 0.30, "of the roofline",
             f"{H200}: the engine's GAP at 32 x 32 at 0.305 of its bandwidth limit, LAP8 0.23 (8 x 8: 0.36)"),
        Rate("h200_kernel_efficiency_small_state", 0.0027, "of the roofline",
             f"{H200}: the engine's VEC at 32 x 32, 45.5k pairs/s in calls of 64 pairs (per-call overheads: an upper "
             "bound on the time of FCN, LCN and VEC blocks, whose pairs carry no pixel pairs)"),
        Rate("h200_sgd_gflops", 125_000.0, "GFLOP/s",
             f"{H200}: VEC_128 and GAP_128 at 32 x 32, batch 40, 489 and 498 steps/s "
             "(bench/train_bench.py --resolution 32 --width 128)"),
        Rate("h200_job_start_s", 6.0, "s",
             "assumed: a GPU job's start-up (python, jax with CUDA, its compilations), priced at the CPU figure "
             "jax_job_start_s until measured: bench/gpu_checks.sh times it, bench/gpu_report.py proposes the value"),
        Rate("sgd_epochs_to_fit", 300.0, "epochs",
             "expected epochs to 100% train accuracy of an architecture without its own entry below (a run stops "
             "there; its runtime limit allows the whole budget): the median over the 64 runs of a default make run "
             f"was 222 (that run's training table, then in README.md; today's run: docs/default-run.md; "
             f"results/tables/training.csv, {DEV}, 2026-12-01)"),
        *[
            Rate(f"sgd_epochs_to_fit_{arch}", epochs, "epochs",
                 f"{arch}: medians of the default make run's training table (NN / NN+: {medians}; then in README.md, "
                 "today's run: docs/default-run.md; results/tables/training.csv, 2026-12-01)")
            for arch, epochs, medians in [
                ("FCN", 100.0, "150 / 50"),
                ("LCN", 75.0, "100 / 50"),
                ("VEC", 250.0, "VEC_16 700 / 275, VEC_32 650 / 267, VEC_64 150 / 100; NN+ makes most of the default's runs"),
                ("GAP", 1350.0, "NN+ 1,350; NN does not fit GAP at depth 8 within the budget"),
                ("LAP4", 700.0, "NN+ 700"),
            ]
        ],
        Rate("cpu_pack_rate", 0.4, "x the runs' rate one after another",
             "a packed job's training (symflow.train.packed) on CPU: 8 runs of VEC_16 or VEC_32 at 8 x 8 in one "
             f"pack, 0.35-0.45x the rate of the same runs one after another (bench/packed_training.py on {DEV}, "
             "2026-12-01; bench/README.md)"),
        Rate("cpu_eigh_gflops", 20.0, "GFLOP/s per thread",
             f"numpy eigh (LAPACK syevd, float64) counted as 10 m^3 flop: 22.7-25.4 at m = 1000, 2000 on {DEV}"),
        Rate("job_start_s", 0.25, "CPU seconds",
             "a job's process start-up without JAX (python, numpy, h5py, pandas) and its small reads and writes: "
             f"0.21 s (median of 455 kernel regressions at m <= 500), 0.15-0.5 s for the table jobs: {QUIET}"),
        Rate("jax_job_start_s", 2.0, "CPU seconds",
             "a JAX job's start-up (importing jax, neural-tangents and flax, compiling or loading its programs from "
             "the shared compilation cache): the default's 97 eta0 jobs, median 2.39 CPU s, of which ~0.5 s is their "
             f"NTK at the SGD rate: {QUIET}. Kernel block packs and the float64 audits are JAX jobs too"),
        Rate("plot_job_s", 2.5, "CPU seconds",
             f"a figure job (matplotlib, seaborn, two files): plot_figure 2.1 s, plot_curves 2.6 s, plot_figS2 3.2 s: "
             f"{QUIET}"),
        Rate("coupled_pair_s", 2.5, "CPU seconds",
             "one coupled pair of Thm 4.1's finite-width audit (symflow.coupled: two 20-step float64 runs, their "
             "compilation shared by the pairs of one architecture and recipe): the default's 10 pairs (FCN on four "
             f"groups, VEC on one, two recipes) took 27.2 CPU s in one job, start-up included: {QUIET}"),
        Rate("data_mb_per_s", 20.0, "MB/s", "standardise, downsample and tau of the source pool, one core"),
        Rate("base_mem_mb", 1500.0, "MB",
             "a JAX process before it holds data: RSS after importing jax + nt ~0.6 GB, with XLA's compilation "
             "buffers 1-1.5 GB (max_rss of the benchmark files)"),
        Rate("imagenet_resnet50_images_per_s", 62_500 * 2_048 / (4.3 * 3_600) / 8, "training images/s per GPU",
             "published, not measured here: the flax ImageNet example's README, v100_x8_mixed_precision (ResNet-50, "
             "batch 2,048): 62,500 steps in 4.3 h on 8 V100s = 8,269 images/s, evaluations included; other models "
             "scale by forward FLOPs (symflow.imagenet.cost); imagenet.resources.per_gpu_rate replaces it with a "
             "rate measured on your GPUs (bench/imagenet_throughput.py)"),
        Rate("imagenet_convert_mb_per_s", 150.0, "MB/s",
             "assumed: one sequential read of the archives for their MD5s and one to copy the JPEG bytes into "
             "shards (no decoding), on a cluster's shared disk"),
        Rate("imagenet_jpeg_bytes", 108_000.0, "bytes per image",
             "ILSVRC2012: 138 GB of training and 6.3 GB of validation JPEGs over 1,331,167 images (the archives' sizes)"),
    ]
}

CPU_KERNEL_GFLOPS = RATES["cpu_kernel_gflops"].value
NT_SLOWDOWN_SAME_STATE = RATES["nt_slowdown_same_state"].value
NT_SLOWDOWN_PIXEL_PAIRS = RATES["nt_slowdown_pixel_pairs"].value
GPU_PEAK_GFLOPS = RATES["h200_peak_gflops"].value
GPU_BANDWIDTH_GBS = RATES["h200_bandwidth_gbs"].value
GPU_KERNEL_EFFICIENCY = RATES["h200_kernel_efficiency"].value
GPU_KERNEL_EFFICIENCY_SMALL_STATE = RATES["h200_kernel_efficiency_small_state"].value
CPU_SGD_GFLOPS = RATES["cpu_sgd_gflops"].value
CPU_SGD_GFLOPS_LOCAL = RATES["cpu_sgd_gflops_local"].value
GPU_SGD_GFLOPS = RATES["h200_sgd_gflops"].value
GPU_SGD_GFLOPS_LOCAL = RATES["gpu_sgd_gflops_local"].value
GPU_STEP_FLOOR_S = RATES["gpu_step_floor_s"].value
CPU_EIGH_GFLOPS = RATES["cpu_eigh_gflops"].value
CPU_PACK_RATE = RATES["cpu_pack_rate"].value
JOB_START_S = RATES["job_start_s"].value
JAX_JOB_START_S = RATES["jax_job_start_s"].value
GPU_JOB_START_S = RATES["h200_job_start_s"].value
PLOT_JOB_S = RATES["plot_job_s"].value
COUPLED_PAIR_S = RATES["coupled_pair_s"].value
BASE_MEM_MB = int(RATES["base_mem_mb"].value)
# Runtime limits (not rates): RUNTIME_MARGIN x the bound + RUNTIME_FLOOR_MIN minutes, x attempt.
RUNTIME_MARGIN = 3.0
RUNTIME_FLOOR_MIN = 10

IMAGE_CHANNELS = 3


def _classes(config: dict) -> int:
    """K, the data source's class count (symflow.sources.source_classes; CIFAR-10's 10): the
    width of the targets, predictions and network outputs."""
    from symflow.sources import source_classes

    return source_classes(config["data"])


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
    bound_seconds: float | None = None  # the most it may take (the runtime limit's base), if more
    gpus: int = 1  # GPUs the job holds where `gpu` (its GPU-hours are seconds x gpus)

    @property
    def limit_seconds(self) -> float:
        return max(self.seconds, self.bound_seconds or 0.0)


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
        seconds /= GPU_KERNEL_EFFICIENCY if _nt_entries(config, arch)[1] else GPU_KERNEL_EFFICIENCY_SMALL_STATE
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
    return n * (4 * r * r * IMAGE_CHANNELS + 4 * _classes(config) + 8)


def _block_rows(config: dict, split: str, i: int, bs: int) -> int:
    n_rows = {"train": bs * (i + 1), "val": config["data"]["n_val"], "test": config["data"]["n_test"]}[split]
    return max(1, min(bs, n_rows - i * bs))


def gram_block_cost(config: dict, arch: str, bs: int, split: str = "train", i: int = 0) -> Cost:
    """A B x B block (fewer rows for the last val/test block): NNGP and NTK."""
    rows = _block_rows(config, split, int(i), int(bs))
    pairs = rows * int(bs)
    gpu = bool(config["resources"]["gpu"])
    item = _itemsize(config)
    seconds = _block_start(config) + pairs * kernel_seconds_per_pair(config, arch, gpu)
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


def _block_start(config: dict) -> float:
    """A kernel job's start-up: a JAX job (its imports and compilation), on its device."""
    return _jax_start(bool(config["resources"]["gpu"]))


def block_work_seconds(config: dict, block) -> float:
    """A block's estimated seconds without its job's start-up: what it adds to a pack."""
    return gram_block_cost(config, block.arch, block.bs, block.split, block.i).seconds - _block_start(config)


def block_pack_cost(config: dict, blocks) -> Cost:
    """Blocks computed one after another by one process (symflow.jobs.BlockPack): one
    start-up, then each block's work in series on the same threads (the runtime request
    covers them all, one after another), the memory of the largest (one block at a time;
    the data once, as each block's own job holds it), every block's file on disk."""
    each = [gram_block_cost(config, b.arch, b.bs, b.split, b.i) for b in blocks]
    start = _block_start(config)
    seconds = start + sum(c.seconds - start for c in each)
    return Cost(seconds, max(c.mem_mb for c in each), sum(c.disk_bytes for c in each), each[0].threads, each[0].gpu)


def regression_cost(config: dict, m: int) -> Cost:
    """Assemble the blocks (float64) and solve the ridge grid from one eigendecomposition."""
    d, m = config["data"], int(m)
    rest = d["n_val"] + d["n_test"]
    threads = int(config["regression"]["threads"])
    k = _classes(config)
    flop = 10.0 * m**3 + 2.0 * m * m * rest + 2.0 * len(config["regression"]["ridge_grid"]) * rest * m * k
    seconds = JOB_START_S + flop / (CPU_EIGH_GFLOPS * 1e9 * threads)
    # K_train, its mirrored copy, eigenvectors and LAPACK's workspace: ~4 m^2; val and test rows twice
    mem = BASE_MEM_MB + 8 * (4 * m * m + 2 * m * rest) / 1e6
    disk = 8 * rest * k + 4096
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
    c, k = IMAGE_CHANNELS, _classes(config)
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


@dataclass(frozen=True)
class _SgdWork:
    """A run's work: expected and budgeted steps, a step's and an evaluation's compute."""

    expected: int
    budget: int
    step_s: float  # compute of one step (no per-step floor)
    eval_s: float  # one evaluation of train, val and test
    eval_every: int
    mem_mb: float
    disk: float
    data_mb: float  # of mem_mb: the run's data, on the host and on the device

    def seconds(self, steps: int, floor: float = 0.0) -> float:
        """Without start-up: `steps` steps at no less than `floor` seconds each, and their evaluations."""
        return steps * max(self.step_s, floor) + (steps // self.eval_every + 1) * self.eval_s


def _sgd_work(config: dict, arch: str, width: int, m: int) -> _SgdWork:
    from symflow.train import step_budget

    s, d = config["sgd"], config["data"]
    net = network_size(config, arch, width)
    m = int(m)
    batch = min(s["batch_size"], m)
    budget = step_budget(m, s["batch_size"], s["max_steps"], s.get("max_epochs"))
    epochs = RATES.get(f"sgd_epochs_to_fit_{arch}", RATES["sgd_epochs_to_fit"]).value
    expected = min(budget, step_budget(m, s["batch_size"], budget, epochs))
    rate = _sgd_rate(config, net["local"])
    # data on host and device copies, parameters x (params, gradients, momentum, checkpoint),
    # activations of a batch kept for the backward pass (x3 for temporaries)
    data_mb = 2 * _data_bytes(config) / 1e6
    mem = BASE_MEM_MB + data_mb + (16 * net["params"] + 3 * 4 * batch * net["activations"]) / 1e6
    rest = d["n_val"] + d["n_test"]
    disk = 4 * rest * _classes(config) + 64 * (budget // s["eval_every"] + 1) + 4096
    return _SgdWork(
        expected=expected,
        budget=budget,
        step_s=3 * batch * net["gflop"] * 1e9 / rate,
        eval_s=net["gflop"] * 1e9 * (m + rest) / rate,
        eval_every=int(s["eval_every"]),
        mem_mb=mem,
        disk=disk,
        data_mb=data_mb,
    )


def sgd_cost(config: dict, arch: str, width: int, m: int) -> Cost:
    """A run: expected to stop at 100% training accuracy after its architecture's measured
    epochs to fit (RATES['sgd_epochs_to_fit_*']), bounded by its budget (sgd.max_steps and sgd.max_epochs), which sizes its runtime limit."""
    w = _sgd_work(config, arch, width, m)
    gpu = bool(config["resources"]["gpu"])
    floor = GPU_STEP_FLOOR_S if gpu else 0.0
    return Cost(
        _jax_start(gpu) + w.seconds(w.expected, floor),
        int(w.mem_mb),
        w.disk,
        int(config["sgd"]["threads"]),
        gpu,
        bound_seconds=_jax_start(gpu) + w.seconds(w.budget, floor),
    )


def _jax_start(gpu: bool) -> float:
    """A JAX job's start-up: imports and its compilations (on a GPU, its own rate)."""
    return GPU_JOB_START_S if gpu else JAX_JOB_START_S


def pack_cost(config: dict, runs) -> Cost:
    """A packed job (symflow.jobs.Pack): one start-up for all its runs. On CPU the runs' work
    at CPU_PACK_RATE of their rate alone (measured); on a GPU a packed step costs the sum of
    the runs' compute, but the per-step floor (launches) once (assumed: not yet measured)."""
    works = [_sgd_work(config, r.arch, r.width, r.m) for r in runs]
    gpu = bool(config["resources"]["gpu"])

    def seconds(steps_of) -> float:
        compute = sum(w.seconds(steps_of(w)) for w in works)
        if not gpu:
            return JAX_JOB_START_S + compute / CPU_PACK_RATE
        return GPU_JOB_START_S + max(compute, max(steps_of(w) for w in works) * GPU_STEP_FLOOR_S)

    # one process; runs on the same data (dataset, transform, seed) share one copy of it
    datasets = len({(r.dataset, r.transform, r.seed) for r in runs})
    mem = BASE_MEM_MB + sum(w.mem_mb - BASE_MEM_MB - w.data_mb for w in works) + datasets * works[0].data_mb
    return Cost(
        seconds(lambda w: w.expected),
        int(mem),
        sum(w.disk for w in works),
        int(config["sgd"]["threads"]),
        gpu,
        bound_seconds=seconds(lambda w: w.budget),
    )


def checkpoint_bytes(config: dict, arch: str, width: int) -> float:
    """A run's checkpoint: parameters and momentum, float32."""
    return 8 * network_size(config, arch, width)["params"]


def eta0_cost(config: dict, arch: str, width: int, m: int) -> Cost:
    """eta0 = 2 n / lambda_max of the empirical NTK on n = min(lr_estimate_size, m) images."""
    s = config["sgd"]
    net = network_size(config, arch, width)
    n = min(s["lr_estimate_size"], int(m))
    samples = s["lr_estimate_samples"] if s["lr_estimate"] == "mc" else 1
    # the Jacobians at the layers' own rate (slow for locally connected ones), then their contraction
    # into the n x n x K x K NTK (K classes): a dense matmul at the dense rate whatever the layers
    k = _classes(config)
    jacobians_flop = samples * 3 * k * n * net["gflop"] * 1e9
    contraction_flop = samples * 2 * k * n * n * net["params"]
    seconds = _jax_start(bool(config["resources"]["gpu"])) + jacobians_flop / _sgd_rate(config, net["local"])
    seconds += contraction_flop / _sgd_rate(config, False)
    # Jacobian blocks are bounded at 4 GB (symflow.train.ntk_block_size)
    jacobians = min(4e9, 3 * 2 * 4 * n * k * net["largest"])
    mem = BASE_MEM_MB + (_data_bytes(config) + jacobians + 16 * net["params"]) / 1e6
    return Cost(seconds, int(mem), 1024, int(s["threads"]), bool(config["resources"]["gpu"]))


def eta0_pack_cost(config: dict, eta0s) -> Cost:
    """eta0 estimates made in turn by one process (symflow.jobs.Eta0Pack): one start-up, each
    estimate's work, the memory of the largest (one at a time)."""
    each = [eta0_cost(config, e.arch, e.width, e.m) for e in eta0s]
    gpu = bool(config["resources"]["gpu"])
    seconds = _jax_start(gpu) + sum(c.seconds - _jax_start(gpu) for c in each)
    return Cost(seconds, max(c.mem_mb for c in each), sum(c.disk_bytes for c in each), each[0].threads, gpu)


def data_cost(config: dict, resolution: int | None = None) -> Cost:
    """One transformed dataset: read the source batches (uint8 -> float32, a few copies), write."""
    from symflow.sources import source_sizes

    pool = sum(source_sizes(config["data"]))
    raw = pool * 32 * 32 * IMAGE_CHANNELS
    seconds = JOB_START_S + raw / (RATES["data_mb_per_s"].value * 1e6)
    mem = BASE_MEM_MB + 6 * 4 * raw / 1e6
    return Cost(seconds, int(mem), _data_bytes(config, resolution), 1, False)


def audit_cost(config: dict, arch: str) -> Cost:
    """Kernels of audit_size images on the identity and the transformed data, float64."""
    n = int(config["kernels"]["audit_size"])
    cpu = {**config, "kernels": {**config["kernels"], "dtype": "float64", "backend": "nt"}}
    seconds = JAX_JOB_START_S + 2 * n * n * kernel_seconds_per_pair(cpu, arch, gpu=False)
    entries, _ = _nt_entries(config, arch)
    mem = BASE_MEM_MB + (2 * _data_bytes(config) + n * n * entries * 8 * 12) / 1e6
    return Cost(seconds, int(mem), 4096, 1, False)


SMALL = Cost(JOB_START_S, 2000, 100e3)  # tables and the report's (they read only small tables)
PLOT = Cost(PLOT_JOB_S, 2000, 300e3)  # a figure: PDF and PNG
ARCHIVE_BYTES = 170_498_071  # cifar-10-python.tar.gz
DOWNLOAD = Cost(600.0, 1000, ARCHIVE_BYTES)
EXTRACT = Cost(120.0, 2000, 185e6)


def imagenet_train_cost(config: dict, model: str, m: int) -> Cost:
    """An ImageNet training run (symflow.imagenet.cost): m x epochs images and the test-set
    evaluations at a ResNet-50 rate per GPU scaled by forward FLOPs, on gpus_per_job GPUs."""
    from symflow.imagenet.cost import job_cost as train_cost

    inet = config["imagenet"]
    recipe, res = inet["recipe"], inet["resources"]
    gpus = int(res["gpus_per_job"])
    rate = res["per_gpu_rate"] or RATES["imagenet_resnet50_images_per_s"].value
    cost = train_cost(model, int(m), epochs=recipe["epochs"], gpus=max(1, gpus),
                      eval_every_epochs=recipe["eval_every_epochs"], per_gpu_rate=rate, image_size=inet["image_size"])
    threads = int(inet["knobs"]["workers"]) + 1  # as the rule: the input workers and the training process
    return Cost(cost.wall_hours * 3600, int(res["mem_mb"]), 1e6, threads, gpus > 0, gpus=max(1, gpus))


def imagenet_convert_cost(config: dict) -> Cost:
    """Read the archives (MD5) and copy every JPEG into shards: disk-bound."""
    from symflow.imagenet.data import TRAIN_IMAGES, VAL_IMAGES

    train = config["imagenet"]["train_images"]
    images = train + VAL_IMAGES * min(1.0, train / TRAIN_IMAGES)  # a smaller source: its test set in proportion
    size = images * RATES["imagenet_jpeg_bytes"].value
    seconds = JOB_START_S + 2 * size / (RATES["imagenet_convert_mb_per_s"].value * 1e6)
    return Cost(seconds, 8000, size, 8, False)


def coupled_audit_cost(config: dict, pairs: int) -> Cost:
    """Thm 4.1's coupled training pairs (symflow.coupled): per pair and recipe two short float64
    runs, dominated by compiling them (COUPLED_PAIR_S each); `pairs` counts pairs x recipes."""
    return Cost(JAX_JOB_START_S + COUPLED_PAIR_S * pairs, BASE_MEM_MB + 1000)


# -- resources of a job, for the rules ---------------------------------------------------------


def runtime_minutes(cost: Cost, attempt: int = 1, cap: float = 0) -> int:
    """Wall-time limit: a margin over the estimate, more on every retry; at most `cap`
    minutes where one is given (resources.max_runtime: a partition's time limit, which no
    request above it can get; a job that resumes from its checkpoints then goes on in its
    next attempt, :func:`resume_attempts`)."""
    minutes = int(math.ceil((RUNTIME_FLOOR_MIN + RUNTIME_MARGIN * cost.limit_seconds / 60.0) * max(1, int(attempt))))
    return min(minutes, int(cap)) if cap else minutes


def mem_mb(cost: Cost, attempt: int = 1) -> int:
    """Memory limit: the estimate, twice it on a retry (not more: a job retried after its
    time limit has not run short of memory, and a request past the nodes' would never start)."""
    return int(math.ceil(cost.mem_mb * min(2, max(1, int(attempt)))))


def resources(cost: Cost, attempt: int = 1, cap: float = 0) -> dict[str, int]:
    return {"mem_mb": mem_mb(cost, attempt), "runtime": runtime_minutes(cost, attempt, cap)}




class RuntimeLimitError(ConfigError):
    """A runtime limit (resources.max_runtime) too short for a job to get anywhere."""


def checkpoint_loss_seconds(config: dict, runs: Sequence, packed: bool = False) -> float:
    """The most work a training job loses when it is killed: a checkpoint is written at the
    evaluation at or after every sgd.checkpoint_every steps (symflow.train.loop), so up to
    checkpoint_every + eval_every steps and an evaluation of each of its `runs` (records with
    arch, width and m); a pack (`packed`) trains them together at its rate."""
    s = config["sgd"]
    lost = 0.0
    for run in runs:
        w = _sgd_work(config, run.arch, run.width, run.m)
        lost += (int(s["checkpoint_every"]) + w.eval_every) * w.step_s + w.eval_s
    return lost / CPU_PACK_RATE if packed and not config["resources"]["gpu"] else lost


def resume_attempts(config: dict, job, cap_minutes: float) -> int:
    """Attempts a job that resumes from its checkpoints (a training run or pack, an ImageNet
    run) needs to finish its whole budget under a runtime limit of `cap_minutes`, with the
    margin a runtime request has over the estimate: each attempt starts up again and loses the
    work since its last checkpoint (the record's ``checkpoint_loss``). 1 without a limit.
    RuntimeLimitError where an attempt would not get past its start-up and that loss."""
    if not cap_minutes:
        return 1
    cost = job.cost(config)
    start = _jax_start(cost.gpu)
    lost = job.checkpoint_loss(config)
    usable = 60.0 * float(cap_minutes) - start - lost
    if usable <= 0:
        raise RuntimeLimitError(
            f"resources.max_runtime: {cap_minutes:g} minutes leave nothing of an attempt of {job.rule} after its "
            f"start-up ({start:.0f} s) and the work it loses between checkpoints ({lost:.0f} s); raise it or lower "
            f"sgd.checkpoint_every"
        )
    return max(1, math.ceil(RUNTIME_MARGIN * (cost.limit_seconds - start) / usable))
