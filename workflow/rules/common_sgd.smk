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


# -- resources: sized from the model's cost (symflow.plan: layer shapes, measured rates) ---------


def sgd_cost(wc):
    return costs.sgd_cost(config, wc.arch, int(wc.width), int(wc.m))


def eta0_cost(wc):
    return costs.eta0_cost(config, wc.arch, int(wc.width), int(wc.m))


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
