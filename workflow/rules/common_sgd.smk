# Paths, wildcard constraints, resources and targets of the sgd stage (rules in sgd.smk).
import re

SGD = config["sgd"]
SGD_RUN = "{dataset}/{arch}-w{width}-{init}/{hp}/{transform}"
SGD_WC = dict(
    arch="|".join(sorted(ARCHITECTURES.names(), key=len, reverse=True)),
    width=r"\d+",
    init="gaussian|uniform",
    hp=re.escape(HP),
    recipe="nn_plus|nn",
    m=r"\d+",
    member=r"\d+",
    k=r"\d+",
)
# Fig. S1's GAP_n reference: trained on the clean end of the so3_path
FIGS1_GAP_REFERENCE = spec_id("so3_path", 0.0)
SGD_GPU = {"gpu": config["resources"]["gpu"]} if config["resources"]["gpu"] > 0 else {}


def sgd_checkpoint(wildcards):
    """checkpoints/sgd/<the run's path below results/sgd/>/state.msgpack"""
    run = sgd_dir(
        wildcards.arch,
        wildcards.width,
        wildcards.transform,
        wildcards.recipe,
        wildcards.m,
        wildcards.seed,
        wildcards.member,
        wildcards.init,
    )
    return f"checkpoints/sgd/{run.removeprefix('results/sgd/')}/state.msgpack"


def ensemble_dir(arch, width, transform, recipe, m, seed, k, init="gaussian"):
    return (
        f"results/ensembles/{DATASET}/{arch}-w{width}-{init}/{HP}/{transform}/"
        f"{recipe}/m{m}/s{seed}/k{k}"
    )


def ensemble_members(wildcards, name):
    return [
        f"{sgd_dir(wildcards.arch, wildcards.width, wildcards.transform, wildcards.recipe, wildcards.m, wildcards.seed, i, wildcards.init)}/{name}"
        for i in range(int(wildcards.k))
    ]


# -- resources: sized from the model's cost -------------------------------------------


def _forward_gflop(arch, width):
    """Forward-pass GFLOP of one example (rough: the conv / dense multiply-adds)."""
    r2, n, depth, f2 = (
        DATA["resolution"] ** 2,
        int(width),
        config["model"]["depth"],
        config["model"]["filter_size"] ** 2,
    )
    if ARCHITECTURES.get(arch).layers == "dense":
        return 2e-9 * (3 * r2 * n + (depth - 1) * n * n + 10 * n)
    return 2e-9 * r2 * (3 * f2 * n + (depth - 1) * f2 * n * n + 10 * n)


def _largest_layer(arch, width):
    """Parameters of the largest layer (sizes the empirical-NTK Jacobian)."""
    r2, n, f2 = DATA["resolution"] ** 2, int(width), config["model"]["filter_size"] ** 2
    layers = ARCHITECTURES.get(arch).layers
    if layers == "dense":
        return max(3 * r2 * n, n * n, 10 * n)
    if layers == "local":
        return max(r2 * f2 * n * n, r2 * n * 10)
    return max(f2 * n * n, r2 * n * 10)


def _gflops(arch):
    """Sustained GFLOP/s of one job. Measured on a 2-core CPU, 1 thread (bench/README.md):
    conv and dense layers ~16-20; locally connected layers (patches + einsum) ~0.5."""
    if SGD_GPU:
        return 1000.0
    return 0.5 if ARCHITECTURES.get(arch).layers == "local" else 15.0


def sgd_runtime(wildcards):
    """Minutes: steps x (3 x batch) forward passes, plus evaluations, x3 margin, + 10."""
    g = _forward_gflop(wildcards.arch, wildcards.width)
    m = int(wildcards.m)
    evals = SGD["max_steps"] // SGD["eval_every"] + 1
    flop = g * (
        3 * min(SGD["batch_size"], m) * SGD["max_steps"]
        + evals * (m + DATA["n_val"] + DATA["n_test"])
    )
    return int(10 + 3 * flop / _gflops(wildcards.arch) / 60)


def sgd_mem_mb(wildcards):
    r2, n = DATA["resolution"] ** 2, int(wildcards.width)
    data = 4 * 3 * r2 * (DATA["n_train"] + DATA["n_val"] + DATA["n_test"]) * 3
    acts = (
        4
        * 500
        * r2
        * n
        * config["model"]["depth"]
        * (1 if ARCHITECTURES.get(wildcards.arch).layers == "dense" else 2)
    )
    return int(1500 + (data + acts) / 1e6)


def eta0_runtime(wildcards):
    n = min(SGD["lr_estimate_size"], int(wildcards.m))
    flop = (
        (SGD["lr_estimate_samples"] if SGD["lr_estimate"] == "mc" else 1)
        * n
        * 10
        * (
            3 * _forward_gflop(wildcards.arch, wildcards.width)
            + 2e-9 * n * _largest_layer(wildcards.arch, wildcards.width)
        )
    )
    return int(10 + 3 * flop / _gflops(wildcards.arch) / 60)


def eta0_mem_mb(wildcards):
    """The NTK's Jacobians (blocked to stay under 4 GB, symflow.train.ntk_block_size) and the rest."""
    n = min(SGD["lr_estimate_size"], int(wildcards.m))
    jacobians = (
        3 * 2 * 4 * n * 10 * _largest_layer(wildcards.arch, wildcards.width) / 1e6
    )
    return int(1500 + min(4000, jacobians))


# -- targets -----------------------------------------------------------------------------------


def sgd_fig2_runs():
    """The SGD metrics rows of Fig. 2 (every architecture x transform x recipe x seed)."""
    return [f for f in fig2_runs() if f.startswith("results/sgd/")]


def figS1_runs():
    """Fig. S1: S-Dist rows and ensemble metrics of VEC_n along the so3_path."""
    e = EXP["figS1"]
    out = []
    for width in e["widths"]:
        for transform in figS1_transforms():
            d = ensemble_dir(
                "VEC", width, transform, e["recipe"], e["m"], e["seed"], e["ensemble"]
            )
            out += [f"{d}/sdist.csv", f"{d}/metrics.csv"]
    return out
