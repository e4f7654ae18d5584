# Config validation (before any job), wildcard constraints, input functions.
import os
import sys
from pathlib import Path

REPO = Path(workflow.basedir)
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from symflow.architectures import ARCHITECTURES, ModelHP
from symflow.configuration import dataset_id, parse_dataset_id, validate_or_exit
from symflow.groups import IDENTITY, GROUPS, canonical_seed, parse_spec, spec_id
from symflow.plan import fig2_trained, flip_point

# one line on stderr and exit status 2 for a bad config; defaults filled in
config = validate_or_exit(config)

DATA = config["data"]
DATASET = dataset_id(DATA)
# Fig. S2 shows its images at their own resolution: a second (cheap) data configuration
FIGS2_DATASET = dataset_id(
    {**DATA, "resolution": config["figS2"]["resolution"] or DATA["resolution"]}
)
# Fig. 4's flip option: a dataset whose training split also holds the mirror images
FLIP_M, FLIP_DATASET = flip_point(config)
DATASETS = sorted({DATASET, FIGS2_DATASET} | ({FLIP_DATASET} if FLIP_M else set()))
SOURCE_DIR = (
    DATA["sample_dir"]
    if DATA["source"] == "sample"
    else f"{DATA['official_dir']}/cifar-10-batches-py"
)
CONDA_ENV = "../../envs/symflow-cpu.yaml"


def _alternatives(names):
    return "|".join(sorted(names, key=len, reverse=True))


_plain = [g.name for g in GROUPS if not g.path]
_paths = [g.name for g in GROUPS if g.path]
TRANSFORM_RE = f"(?:{_alternatives(_plain)})" + (
    f"|(?:{_alternatives(_paths)})-t\\d+(?:\\.\\d+)?" if _paths else ""
)


wildcard_constraints:
    table="runs|fig2|fig3|fig4|figS5|figS6",
    figure="fig2|fig3|fig4|figS1|figS5|figS6",
    dataset="|".join(d.replace(".", "\\.") for d in DATASETS),
    transform=TRANSFORM_RE,
    seed=r"\d+",


# JAX's persistent compilation cache, inherited by every job's process (jax reads these
# variables at import); a variable set by the user wins
if config["resources"]["compilation_cache"]:
    os.environ.setdefault(
        "JAX_COMPILATION_CACHE_DIR",
        str(Path(config["resources"]["compilation_cache"]).absolute()),
    )
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


HP = ModelHP.from_config(config["model"]).tag  # e.g. L8-w2-b0.01-f3
KSPEC = (
    f"{config['kernels']['backend']}-{config['kernels']['dtype']}"  # e.g. nt-float32
)
KERNELS = config["regression"]["kernels"]
EXP = config["experiments"]


# -- paths: each names everything that determines its content ------------------


def data_file(transform, seed, dataset=DATASET):
    """The data-stage file; a group with one element (identity) has one file for all seeds."""
    return f"results/data/{dataset}/{transform}/s{canonical_seed(transform, seed)}.h5"


def regression_file(arch, transform, seed, m, kernel, ext="h5", dataset=DATASET):
    """Kernel regression on the first m training examples: predictions (.h5), metrics row (.csv)."""
    return f"results/regression/{dataset}/{arch}/{HP}/{KSPEC}/{transform}/s{seed}/m{m}/{kernel}.{ext}"


def sgd_dir(
    arch, width, transform, recipe, m, seed, member=0, init="gaussian", dataset=DATASET
):
    """A finite-width SGD run: metrics.csv, predictions.h5, curve.csv inside."""
    return (
        f"results/sgd/{dataset}/{arch}-w{width}-{init}/{HP}/{transform}/"
        f"{recipe}/m{m}/s{seed}/i{member}"
    )


def sgd_metrics(*args, **kwargs):
    return f"{sgd_dir(*args, **kwargs)}/metrics.csv"


def width_of(arch):
    return config["sgd"]["widths"].get(arch, ARCHITECTURES.get(arch).default_width)


# -- targets of each figure (lists of metrics rows) ---------------------------------


def fig2_runs():
    e = EXP["fig2"]
    out = []
    for arch in e["architectures"]:
        for transform in e["transforms"]:
            for seed in e["seeds"]:
                out += [
                    regression_file(arch, transform, seed, e["m"], k, "csv")
                    for k in KERNELS
                ]
                out += [
                    sgd_metrics(arch, width_of(arch), transform, r, e["m"], seed)
                    for a, r in fig2_trained(e)
                    if a == arch
                ]
    return out


def fig3_runs():
    e = EXP["fig3"]
    out = []
    for transform in e["transforms"]:
        for seed in e["seeds"]:
            out.append(regression_file("VEC", transform, seed, e["m"], "ntk", "csv"))
            for width in e["widths"]:
                out += [
                    sgd_metrics("VEC", width, transform, r, e["m"], seed)
                    for r in e["recipes"]
                ]
    return out


def fig4_sizes():
    return list(EXP["fig4"]["m"]) + ([FLIP_M] if FLIP_M else [])


def fig4_runs():
    e = EXP["fig4"]
    out = []
    for seed in e["seeds"]:
        for m in fig4_sizes():
            # the flipped point reads its own data
            ds = FLIP_DATASET if m == FLIP_M else DATASET
            out += [
                regression_file("VEC", "identity", seed, m, k, "csv", ds)
                for k in KERNELS
            ]
            for arch, transform in (
                ("VEC", "identity"),
                ("LCN", "identity"),
                ("VEC", "o3_pixel"),
            ):
                out.append(
                    sgd_metrics(
                        arch,
                        width_of(arch),
                        transform,
                        e["recipe"],
                        m,
                        seed,
                        dataset=ds,
                    )
                )
    return out


def figS1_transforms():
    return [spec_id("so3_path", t) for t in EXP["figS1"]["t"]]


def figS5_runs():
    e = EXP["figS5"]
    return [
        sgd_metrics(arch, width_of(arch), transform, r, e["m"], seed, init=init)
        for arch in e["architectures"]
        for transform in e["transforms"]
        for r in e["recipes"]
        for seed in e["seeds"]
        for init in ("gaussian", "uniform")
    ]


def figS6_runs():
    e = EXP["figS6"]
    return [
        regression_file(arch, transform, seed, m, k, "csv")
        for arch in e["architectures"]
        for transform in e["transforms"]
        for seed in e["seeds"]
        for m in e["m"]
        for k in KERNELS
    ]


def dataset_params(wildcards):
    """The data settings that a dataset name stands for (the path names them all)."""
    return parse_dataset_id(wildcards.dataset)


def figS2_transforms():
    fig = config["figS2"]
    return list(fig["transforms"]) + [spec_id("so3_path", t) for t in config["path_t"]]


# -- tables and figures -----------------------------------------------------------

TABLES = {
    "fig2": fig2_runs,
    "fig3": fig3_runs,
    "fig4": fig4_runs,
    "figS5": figS5_runs,
    "figS6": figS6_runs,
}


def all_runs():
    """Every metrics row: the figures' runs and Fig. S1's ensembles (their mean's row)."""
    runs = {path for table in TABLES.values() for path in table()}
    runs |= {path for path in figS1_runs() if path.endswith("metrics.csv")}
    return sorted(runs)


def table_inputs(wildcards):
    """The metrics rows a table gathers: one figure's runs, or every run (runs.csv)."""
    if wildcards.table == "runs":
        return all_runs()
    return TABLES[wildcards.table]()


def figure_options(wildcards):
    """Keyword arguments of the figure's plot function (what the config asks the figure to show)."""
    fig = wildcards.figure
    e = EXP.get(fig, {})
    widths = {a: width_of(a) for a in ARCHITECTURES.names()}
    if fig == "fig2":
        return dict(
            architectures=e["architectures"],
            transforms=e["transforms"],
            m=e["m"],
            widths=widths,
        )
    if fig == "fig3":
        return dict(
            widths=e["widths"],
            transforms=e["transforms"],
            recipes=e["recipes"],
            m=e["m"],
        )
    if fig == "fig4":
        return dict(
            sizes=fig4_sizes(),
            recipe=e["recipe"],
            widths=widths,
            fit_points=e["fit_points"],
            flip_m=FLIP_M,
        )
    if fig == "figS5":
        return dict(
            architectures=e["architectures"],
            transforms=e["transforms"],
            recipes=e["recipes"],
            m=e["m"],
            widths=widths,
        )
    if fig == "figS1":
        return {}
    if fig == "figS6":
        return dict(
            architectures=e["architectures"], transforms=e["transforms"], sizes=e["m"]
        )
    raise ValueError(f"no figure {fig!r}")


FIGURES = ["fig2", "fig3", "fig4", "figS1", "figS5", "figS6"]


def all_targets():
    out = ["results/figS2.pdf", "results/figS2.png", "results/tables/runs.csv"]
    out += ["results/symmetry_audit.csv"]
    out += [f"results/{f}.{ext}" for f in FIGURES for ext in ("pdf", "png")]
    out += ["results/tables/config.yaml", "results/tables/paper_values.csv"]
    out += ["results/claims.csv", "results/tables/failed_runs.csv"]
    return out


# == kernels: Gram blocks, symmetry audit, kernel regression (issue 4) ==================
# Block files name everything that fixes their content:
#   results/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/{split}/{i}-{j}.h5
# A regression on a transform the architecture is invariant to (Thm 4.1, the registry's
# claim) reads the blocks of the untransformed data when kernels.reuse_invariant is on,
# and then also the symmetry audit of that pair, which must agree.

from symflow.configuration import kernel_sizes
from symflow.kernels import block_size_for, blocks_for

KCONF = config["kernels"]
HP_RE = r"L\d+-w[0-9.e+-]+-b[0-9.e+-]+-f\d+"
KSPEC_RE = r"(?:nt|engine)-float(?:32|64)"


wildcard_constraints:
    arch=_alternatives(ARCHITECTURES.names()),
    hp=HP_RE,
    kspec=KSPEC_RE,
    split="train|val|test",
    i=r"\d+",
    j=r"\d+",
    bs=r"\d+",
    m=r"\d+",
    kernel="ntk|nngp",


def block_file(arch, transform, seed, split, i, j, dataset=DATASET, hp=HP, kspec=KSPEC):
    bs = block_size_for(KCONF["block_size"], arch)
    return (
        f"results/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/"
        f"{split}/{i}-{j}.h5"
    )


def audit_file(arch, transform, seed, dataset=DATASET, hp=HP):
    return f"results/audit/{dataset}/{arch}/{hp}/{transform}/s{seed}.csv"


def equality_audit_file(arch_a, arch_b, dataset=DATASET, hp=HP):
    return f"results/audit/{dataset}/{arch_a}={arch_b}/{hp}/identity/s0.csv"


def reuses_untransformed(arch, transform):
    """Does a kernel on `transform` data come from the untransformed blocks (Thm 4.1)?

    Only for a group that moves the data (not the trivial group, whose data are the
    untransformed data) and that the architecture is claimed invariant to; the
    regression then also reads the symmetry audit of the pair, which must agree.
    """
    spec = parse_spec(transform)
    return (
        KCONF["reuse_invariant"]
        and not GROUPS.get(spec.group).trivial
        and ARCHITECTURES.get(arch).claims(spec.group, infinite=True)
    )


def kernel_source(arch, transform, seed):
    """(transform, seed) of the data whose blocks serve a kernel on `transform` data."""
    if reuses_untransformed(arch, transform):
        return IDENTITY, 0
    return transform, canonical_seed(transform, int(seed))


def regression_blocks(arch, transform, seed, m, dataset=DATASET, hp=HP, kspec=KSPEC):
    """Every block a regression on the first m examples reads (n_val, n_test: the dataset's)."""
    src, src_seed = kernel_source(arch, transform, seed)
    bs = block_size_for(KCONF["block_size"], arch)
    sizes = parse_dataset_id(dataset)
    return [
        block_file(arch, src, src_seed, split, i, j, dataset, hp, kspec)
        for split, i, j in blocks_for(int(m), bs, sizes["n_val"], sizes["n_test"])
    ]


def regression_inputs(wc):
    src, src_seed = kernel_source(wc.arch, wc.transform, wc.seed)
    out = {
        "blocks": regression_blocks(
            wc.arch, wc.transform, wc.seed, wc.m, wc.dataset, wc.hp, wc.kspec
        ),
        "data": data_file(src, src_seed, wc.dataset),
    }
    if reuses_untransformed(wc.arch, wc.transform):
        out["audit"] = audit_file(wc.arch, wc.transform, wc.seed, wc.dataset, wc.hp)
    return out


def kernel_pairs():
    """(arch, transform, seed) of every kernel regression the experiments ask for."""
    e = EXP
    out = set()
    for fig in ("fig2", "figS6"):
        out |= {
            (a, t, s)
            for a in e[fig]["architectures"]
            for t in e[fig]["transforms"]
            for s in e[fig]["seeds"]
        }
    out |= {("VEC", t, s) for t in e["fig3"]["transforms"] for s in e["fig3"]["seeds"]}
    out |= {("VEC", "identity", s) for s in e["fig4"]["seeds"]}
    out |= {("VEC", t, e["figS1"]["seed"]) for t in figS1_transforms()}
    return sorted(out)


def symmetry_audit_files():
    """Every audited claim: each (architecture, transform, seed) a regression uses, and
    each kernel equality the registry declares (Architecture.same_kernel_as)."""
    files = [audit_file(a, t, s) for a, t, s in kernel_pairs()]
    return files + [
        equality_audit_file(a.name, b) for a in ARCHITECTURES for b in a.same_kernel_as
    ]


# -- resources: sized from the config by symflow.plan (which `symflow plan` also sums) ----------
from symflow import plan as costs

GPU = {"gpu": config["resources"]["gpu"]} if config["resources"]["gpu"] > 0 else {}


def sized(cost_of):
    """mem_mb and runtime (minutes) of a rule from its job's estimated cost; more on each retry."""

    def mem_mb(wildcards, attempt):
        return costs.mem_mb(cost_of(wildcards), attempt)

    def runtime(wildcards, attempt):
        return costs.runtime_minutes(cost_of(wildcards), attempt)

    return dict(mem_mb=mem_mb, runtime=runtime)


def block_cost(wc):
    return costs.gram_block_cost(config, wc.arch, int(wc.bs), wc.split, int(wc.i))


def block_group(wc):
    """Cheap blocks on CPU share the group 'gram_blocks' (the SLURM profile submits
    several at once, group-components); GPU blocks stay single jobs, as a group's GPU
    request would be the sum of its members'."""
    limit = config["resources"]["group_blocks_under"]
    if GPU or not limit or block_cost(wc).seconds > 60 * limit:
        return None
    return "gram_blocks"


def regression_cost(wc):
    return costs.regression_cost(config, int(wc.m))


def audit_cost(wc):
    return costs.audit_cost(config, wc.arch)


def equality_audit_cost(wc):
    a, b = costs.audit_cost(config, wc.arch_a), costs.audit_cost(config, wc.arch_b)
    return max(a, b, key=lambda c: c.seconds)


def data_cost(wc):
    return costs.data_cost(config, parse_dataset_id(wc.dataset)["resolution"])


def small_cost(wc):
    return costs.SMALL
