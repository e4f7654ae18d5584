# The config (validated before any job), the job model, wildcard constraints, and the
# functions every rule takes its inputs, params and resources from.
#
# Which jobs exist, what each reads and which settings change its results are decided once,
# in symflow.jobs: each rule has a record there (Data, Block, Regression, Run, ...) and takes
# its output, log and benchmark patterns from it (Run.patterns(), Run.log_pattern(), ...),
# its device (gpu, conda_env below), and, through the functions below, its inputs, params
# and resources: its input function builds the record from the wildcards and asks it.
# Params carry only what changes results; speed and housekeeping knobs travel as resources.
import dataclasses
import os
import sys
from pathlib import Path

# This file lies in the symflow checkout's workflow/rules, also where the workflow is a module
# of another project (`module symflow: snakefile: ...`), whose folder is then workflow.basedir:
# so the checkout is found from this file's folder, and its symflow goes first on sys.path
# (Snakemake 9 also puts each Snakefile's folder there; this does not rely on it). A module
# read from a remote source has no local folder: symflow is then the installed package.
_rules_dir = workflow.current_basedir
SYMFLOW_ROOT = (
    Path(_rules_dir).parent.parent if isinstance(_rules_dir, os.PathLike) else None
)
if SYMFLOW_ROOT is not None and (SYMFLOW_ROOT / "symflow").is_dir():
    if str(SYMFLOW_ROOT) not in sys.path:
        sys.path.insert(0, str(SYMFLOW_ROOT))
    # what the rules' conda environments (envs/*.yaml, a pip line) install as symflow; set it
    # yourself to install another (a pip requirement: a folder, a version, a git URL)
    os.environ.setdefault("SYMFLOW_PACKAGE", str(SYMFLOW_ROOT))

from symflow import jobs as J
from symflow import costs, plan
from symflow.architectures import ARCHITECTURES
from symflow.configuration import validate_or_exit
from symflow.groups import GROUPS

# one line on stderr and exit status 2 for a bad config; defaults filled in
config = validate_or_exit(config)
JOBS = J.Jobs(config)
CONDA_ENV = "../../envs/symflow-cpu.yaml"


def _alternatives(names):
    return "|".join(sorted(names, key=len, reverse=True))


_plain = [g.name for g in GROUPS if not g.path]
_paths = [g.name for g in GROUPS if g.path]
TRANSFORM_RE = f"(?:{_alternatives(_plain)})" + (
    f"|(?:{_alternatives(_paths)})-t\\d+(?:\\.\\d+)?" if _paths else ""
)


wildcard_constraints:
    table="runs|" + "|".join(J.TABLES),
    figure="|".join(J.FIGURES),
    dataset="|".join(d.replace(".", "\\.") for d in JOBS.datasets),
    transform=TRANSFORM_RE,
    seed=r"\d+",
    data_seed=r"\d+",
    arch=_alternatives(ARCHITECTURES.names()),
    hp=r"L\d+-w[0-9.e+-]+-b[0-9.e+-]+-f\d+",
    kspec=r"(?:nt|engine)-float(?:32|64)",
    split="train|val|test",
    i=r"\d+",
    j=r"\d+",
    bs=r"\d+",
    m=r"\d+",
    kernel="ntk|nngp",
    width=r"\d+",
    init="|".join(J.INITS),
    recipe="nn_plus|nn",
    member=r"\d+",
    k=r"\d+",


# JAX's persistent compilation cache, inherited by every job's process (jax reads these
# variables at import); a variable set by the user wins
if config["resources"]["compilation_cache"]:
    os.environ.setdefault(
        "JAX_COMPILATION_CACHE_DIR",
        str(Path(config["resources"]["compilation_cache"]).absolute()),
    )
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


# -- a rule's inputs, params and resources, from its job's record ------------------------------


def inputs_of(record):
    """The rule's input function (use with unpack): what the job reads, by name."""
    return lambda wc: JOBS.input_paths(record.from_wildcards(wc))


def settings_of(record):
    """The rule's only param: the settings that change the job's results."""
    return lambda wc: JOBS.settings(record.from_wildcards(wc))


def speed_of(record, name):
    """A speed or housekeeping knob of the job (a resource: never a rerun trigger)."""
    return lambda wc: JOBS.speed(record.from_wildcards(wc))[name]


GPU = {"gpu": config["resources"]["gpu"]} if config["resources"]["gpu"] > 0 else {}
# resources.jobs_per_gpu: a speed knob, read by the GPU jobs' configure_jax
if GPU and config["resources"]["jobs_per_gpu"] > 1:
    GPU["jobs_per_gpu"] = config["resources"]["jobs_per_gpu"]
if GPU and config["resources"]["gpu_partition"]:
    GPU["slurm_partition"] = config["resources"]["gpu_partition"]
# the conda env of the rules that ask for GPU (symflow.plan.GPU_RULES): JAX with CUDA then
GPU_CONDA_ENV = "../../envs/symflow-cuda.yaml" if GPU else CONDA_ENV


def gpu(record):
    """The GPU resources of a rule whose record runs on the GPU (`device = "gpu"`, the
    rules of symflow.plan.GPU_RULES) where the config gives one; none otherwise.
    `record`: the rule's record class, or its one job (a pack)."""
    return GPU if record.device == "gpu" else {}


def conda_env(record):
    """The rule's conda environment: JAX with CUDA for a GPU record where the config
    gives a GPU, else the CPU one."""
    return GPU_CONDA_ENV if record.device == "gpu" else CONDA_ENV


def sized(record):
    """mem_mb and runtime (minutes) of a rule from its job's estimated cost (symflow.plan);
    more on each retry. `record`: the rule's record class, or its one job."""

    def cost(wc):
        job = record if isinstance(record, J.Job) else record.from_wildcards(wc)
        return plan.job_cost(config, job)

    def mem_mb(wildcards, attempt):
        return costs.mem_mb(cost(wildcards), attempt)

    def runtime(wildcards, attempt):
        return costs.runtime_minutes(
            cost(wildcards), attempt, config["resources"]["max_runtime"]
        )

    return dict(mem_mb=mem_mb, runtime=runtime)


def resume_retries(record):
    """The retries of a rule whose jobs resume from their checkpoints, under a runtime limit
    (resources.max_runtime): the attempts its longest job needs to finish its budget
    (symflow.costs.resume_attempts), one more for an ordinary failure; None without a limit
    (the profile's retries). `record`: the rule's record class (its default-target jobs),
    or its one job (a pack)."""
    cap = config["resources"]["max_runtime"]
    if not cap:
        return None
    found = [record] if isinstance(record, J.Job) else JOBS.walk().get(record.rule, ())
    try:
        return max(
            (costs.resume_attempts(config, job, cap) for job in found), default=1
        )
    except costs.RuntimeLimitError as exc:  # one line and exit 2, as a bad config
        sys.stderr.write(f"config error: {exc}\n")
        raise SystemExit(2) from None


def all_targets():
    return [r.path for r in JOBS.targets()]
