"""The jobs a config asks for, enumerated once: used by the workflow's rules and by the plan.

Every job of the workflow is a small frozen record below, one class per rule (a *job
kind*). Its fields are the rule's wildcards and the record knows everything about its job:

* ``outputs()``: its output paths; the rule's output, log and benchmark patterns are the
  same methods called on the record with placeholders for fields (``Run.patterns()``,
  ``Run.log_pattern()``, ``Run.benchmark_pattern()``), so a path is typed once, here;
* ``inputs(jobs)``: what it reads (other jobs' outputs and source files), named as the
  rule's inputs; ``settings(jobs)``: the config values that change its results (the rule's
  only params, so a config edit reruns exactly the jobs whose results it changes);
  ``speed(jobs)``: the knobs that change only how fast it runs or what it leaves behind
  (threads, rows per call, checkpoint cadence, the source folder's location: its resources,
  never its params); ``jobs`` is the :class:`Jobs` of the config, the graph's helpers;
* ``cost(config)``: its estimated seconds, memory and disk (symflow.costs' cost functions),
  which size the rule's resources and ``symflow plan``;
* ``stage`` and ``device``: the stage ``symflow plan`` counts it under, and whether it runs
  on a GPU where the config gives one (its rule then asks for the GPU and the CUDA env).

Each record registers itself on definition (:data:`KINDS`, in the order of this file, which
is the plan's order); ``symflow.plan.STAGES`` and ``GPU_RULES`` are derived from them.
:class:`Jobs` (built from a validated config) holds the graph's helpers (what each figure
shows, kernel reuse, packs) and walks it from the default target (``Jobs.walk``).
``workflow/rules/*.smk`` build a record from a job's wildcards and ask it for its inputs,
params and resources; ``symflow.plan`` walks the same graph to count and cost the plan.
docs/development.md says how to add a job kind.

Like the rest of symflow this module never imports snakemake and never reads a config
file: it takes the dict that ``symflow.configuration.validate`` returns.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from symflow import costs
from symflow.runs import TrainingRun

if TYPE_CHECKING:
    from symflow.costs import Cost

# The stages of `symflow plan`, in its order; each record names one (its `stage`).
STAGE_NAMES = ("data", "kernel blocks", "regression", "eta0", "sgd", "imagenet", "figures")

# Every job kind (record class), in the order of definition: the plan's order within a stage.
KINDS: list[type[Job]] = []

# -- the records: one per rule ------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """A job: its rule's wildcards as fields. A subclass that names a `rule` is a job kind:
    it names its `stage` and may set `device`, and overrides the methods below that differ
    from the defaults (no inputs, settings or speed knobs; a small table job's cost). A record
    with a `folder()` gives it relative: its paths put their top folder in front (results/kernels/,
    results/sgd/, benchmarks/sgd/, checkpoints/sgd/, ...); a folder() never starts with results/."""

    rule: ClassVar[str]
    stage: ClassVar[str]  # one of STAGE_NAMES
    device: ClassVar[str] = "cpu"  # "gpu": on a GPU where resources.gpu > 0 (see on_gpu)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "rule" in cls.__dict__:  # a job kind (not an abstract base)
            if getattr(cls, "stage", None) not in STAGE_NAMES:
                raise TypeError(f"{cls.__name__} (rule {cls.rule}): stage must be one of {STAGE_NAMES}")
            if cls.device not in ("cpu", "gpu"):
                raise TypeError(f"{cls.__name__}: device must be 'cpu' or 'gpu'")
            if any(k.rule == cls.rule for k in KINDS):
                raise TypeError(f"{cls.__name__}: rule {cls.rule} already has a record")
            KINDS.append(cls)

    def outputs(self) -> dict[str, str]:
        raise NotImplementedError

    # -- what the job reads, what changes its results, what only changes its speed, its cost --

    def inputs(self, jobs: Jobs) -> dict[str, Input | list[Input]]:
        """What the job reads, named as the rule's inputs."""
        return {}

    def settings(self, jobs: Jobs) -> dict:
        """The config values that change the job's results and are not in its path or inputs:
        its rule's params, and so what a config edit reruns. Speed knobs are never here."""
        return {}

    def speed(self, jobs: Jobs) -> dict[str, int | str]:
        """The knobs that change only how fast the job runs or what it leaves behind: its
        resources (besides threads, memory and runtime), never its params."""
        return {}

    def cost(self, config: Mapping) -> Cost:
        """Estimated seconds, memory and disk (symflow.costs): a small table job's by default."""
        return costs.SMALL

    def checkpoint_loss(self, config: Mapping) -> float:
        """The most work (seconds) the job loses when it is killed and resumes from its
        checkpoint (symflow.costs.resume_attempts): none for a job that does not resume."""
        return 0.0

    def on_gpu(self, config: Mapping) -> bool:
        """Does the job run on a GPU under `config`?"""
        return self.device == "gpu" and bool(config["resources"]["gpu"])

    def main_output(self) -> Ref | None:
        """The per-image output behind the job's metrics row (None: no per-image record)."""
        return None

    # -- names -------------------------------------------------------------------------------

    @classmethod
    def from_wildcards(cls, wildcards: Mapping[str, Any] | Any) -> Job:
        """The record of a job from its wildcards (a Snakemake Wildcards object or a mapping)."""
        get = wildcards.get if isinstance(wildcards, Mapping) else functools.partial(getattr, wildcards)
        values = {}
        for f in dataclasses.fields(cls):
            value = get(f.name)
            values[f.name] = int(value) if f.type == "int" else str(value)
        return cls(**values)

    @classmethod
    def _placeholders(cls) -> Job:
        """The record with each field a Snakemake wildcard, "{field}": its paths are its rule's patterns."""
        return cls(**{f.name: f"{{{f.name}}}" for f in dataclasses.fields(cls)})

    @classmethod
    def patterns(cls) -> dict[str, str]:
        """The rule's output patterns (``output: **Record.patterns()``)."""
        return cls._placeholders().outputs()

    @classmethod
    def pattern(cls, name: str | None = None) -> str:
        """One output pattern (the only one when `name` is None)."""
        return cls._placeholders().output(name)

    @classmethod
    def log_pattern(cls) -> str:
        return cls._placeholders().log()

    @classmethod
    def benchmark_pattern(cls) -> str:
        return cls._placeholders().benchmark()

    def benchmark(self) -> str:
        """The job's benchmark file (Snakemake's `benchmark:`): its first output's path under
        benchmarks/ instead of results/, ending in .tsv (rules without wildcards name theirs)."""
        first = next(iter(self.outputs().values()))
        stem = first.removeprefix("results/").rsplit(".", 1)[0]
        return f"benchmarks/{stem}.tsv"

    def log(self) -> str:
        """The job's log file: its benchmark file's path under logs/, ending in .log (the rules'
        `log:` patterns mirror their `benchmark:` ones)."""
        bench = self.benchmark()
        return f"logs/{bench.removeprefix('benchmarks/').removesuffix('.tsv')}.log" if bench else ""

    def output(self, name: str | None = None) -> str:
        """One output path (the only one when `name` is None)."""
        outs = self.outputs()
        if name is None:
            if len(outs) != 1:
                raise ValueError(f"{type(self).__name__} has outputs {sorted(outs)}; name one")
            return next(iter(outs.values()))
        return outs[name]


@dataclass(frozen=True)
class _Fixed(Job):
    """A job of a rule without wildcards: its outputs and benchmark file are constants."""

    OUTPUTS: ClassVar[dict[str, str]] = {}
    BENCHMARK: ClassVar[str] = ""

    def outputs(self):
        return dict(self.OUTPUTS)

    def benchmark(self):
        return self.BENCHMARK


def _run_stem(job) -> str:
    return f"{job.dataset}/{job.arch}-w{job.width}-{job.init}/{job.hp}/{job.transform}"


class _Packed(Job):
    """Several jobs of one rule run by one process (``sgd.pack`` > 1, ``kernels.pack_minutes``
    > 0), each keeping its own outputs and log. Snakemake has one rule per pack
    (``<rule>_<digest>``, no wildcards, so it wins over the members' own rule for their
    files); the plan counts them all under one rule name. Subclasses have one field, their
    members' tuple, and say what names a member in the digest (`member_key`)."""

    KIND: ClassVar[str]  # the folder of the pack's log and benchmark: .../{KIND}/m{m}/{digest}
    SETTINGS: ClassVar[str]  # the key of the members' settings in the pack's

    @property
    def members(self) -> tuple[Job, ...]:
        """The jobs of the pack (its one field)."""
        (field,) = dataclasses.fields(self)
        return getattr(self, field.name)

    @staticmethod
    def member_key(job: Job) -> str:
        """What names a member in the digest."""
        raise NotImplementedError

    @property
    def digest(self) -> str:
        """Ten hex digits of sha256 over the members' keys: the pack's name."""
        import hashlib

        return hashlib.sha256("\n".join(self.member_key(j) for j in self.members).encode()).hexdigest()[:10]

    @property
    def rule_name(self) -> str:
        """The pack's own Snakemake rule."""
        return f"{self.rule}_{self.digest}"

    def folder(self) -> str:
        j = self.members[0]
        return f"{_run_stem(j).rsplit('/', 1)[0]}/{self.KIND}/m{j.m}/{self.digest}"

    def outputs(self):
        return {f"{name}_{i}": path for i, job in enumerate(self.members) for name, path in job.outputs().items()}

    def benchmark(self):
        return f"benchmarks/sgd/{self.folder()}.tsv"

    def member_logs(self) -> list[str]:
        """Each member's own log, as its own rule would write it."""
        return [j.log() for j in self.members]

    def inputs(self, jobs):
        """Each member's, numbered as the pack's outputs."""
        return {f"{name}_{i}": x for i, member in enumerate(self.members) for name, x in member.inputs(jobs).items()}

    def settings(self, jobs):
        return {self.SETTINGS: [member.settings(jobs) for member in self.members]}

    def speed(self, jobs):
        return self.members[0].speed(jobs)


# -- data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download(Job):
    rule: ClassVar[str] = "download_cifar10"
    stage: ClassVar[str] = "data"
    folder: str

    def outputs(self):
        return {"archive": f"{self.folder}/cifar-10-python.tar.gz"}

    def benchmark(self):
        return "benchmarks/data/download_cifar10.tsv"

    def cost(self, config):
        return costs.DOWNLOAD


@dataclass(frozen=True)
class Extract(Job):
    rule: ClassVar[str] = "extract_cifar10"
    stage: ClassVar[str] = "data"
    folder: str

    def outputs(self):
        return {"sums": f"{self.folder}/cifar-10-batches-py/SHA256SUMS"}

    def benchmark(self):
        return "benchmarks/data/extract_cifar10.tsv"

    def inputs(self, jobs):
        return {"archive": ref(Download(self.folder))}

    def cost(self, config):
        return costs.EXTRACT


@dataclass(frozen=True)
class Data(Job):
    """One transformed dataset; `data_seed` is the seed of its draws of tau: a run's seed, but 0
    for a group without random draws (the identity: one file for every run seed;
    groups.canonical_seed, Jobs.data)."""

    rule: ClassVar[str] = "transform_dataset"
    stage: ClassVar[str] = "data"
    dataset: str
    transform: str
    data_seed: int

    def outputs(self):
        return {"h5": f"results/data/{self.dataset}/{self.transform}/s{self.data_seed}.h5"}

    def inputs(self, jobs):
        source = jobs.source()
        return {"sums": source} if isinstance(source, Ref) else {}

    def settings(self, jobs):
        from symflow.configuration import parse_dataset_id

        return parse_dataset_id(self.dataset)

    def speed(self, jobs):
        return {"source_dir": jobs.source_folder()}

    def cost(self, config):
        from symflow.configuration import parse_dataset_id

        return costs.data_cost(config, parse_dataset_id(self.dataset)["resolution"])


# -- kernel blocks and the symmetry audit --------------------------------------------------------


@dataclass(frozen=True)
class Block(Job):
    """A B x B block of the NNGP and NTK Gram matrices (rows `split` block i, train block j) of
    one data file: `transform` and `data_seed` are that file's (Jobs.kernel_source), not
    necessarily the regression's that reads the block."""

    rule: ClassVar[str] = "compute_gram_block"
    stage: ClassVar[str] = "kernel blocks"
    device: ClassVar[str] = "gpu"
    dataset: str
    arch: str
    hp: str
    kspec: str
    transform: str
    data_seed: int
    bs: int
    split: str
    i: int
    j: int

    def outputs(self):
        return {"h5": f"results/kernels/{self.folder()}/{self.split}/{self.i}-{self.j}.h5"}

    def folder(self) -> str:
        """The folder of the blocks of one data file, architecture and block size (relative:
        under results/kernels/ for the blocks, benchmarks/kernels/ for a pack's benchmark)."""
        return (f"{self.dataset}/{self.arch}/{self.hp}/{self.kspec}/{self.transform}/"
                f"s{self.data_seed}/B{self.bs}")  # fmt: skip

    @classmethod
    def from_output(cls, path: str) -> Block:
        """The block whose output is `path` (a path names everything that determines a block)."""
        import re

        match = re.fullmatch(r"(?:.*/)?results/kernels/(?P<dataset>[^/]+)/(?P<arch>[^/]+)/(?P<hp>[^/]+)/"
                             r"(?P<kspec>[^/]+)/(?P<transform>[^/]+)/s(?P<data_seed>\d+)/B(?P<bs>\d+)/"
                             r"(?P<split>train|val|test)/(?P<i>\d+)-(?P<j>\d+)\.h5", str(path))  # fmt: skip
        if not match:
            raise ValueError(f"{path}: not a kernel block's path (results/kernels/.../B<bs>/<split>/<i>-<j>.h5)")
        block = cls.from_wildcards(match.groupdict())
        if not str(path).endswith(block.output()):
            raise ValueError(f"{path}: not a kernel block's path as symflow writes it")
        return block

    def inputs(self, jobs):
        return {"data": ref(jobs.data(self.transform, self.data_seed, self.dataset))}

    def speed(self, jobs):
        return {"batch_rows": int(jobs.config["kernels"]["batch_size"])}

    def cost(self, config):
        return costs.gram_block_cost(config, self.arch, self.bs, self.split, self.i)


@dataclass(frozen=True)
class BlockPack(_Packed):
    """Kernel blocks of one data file, architecture and block size, computed one after
    another by one job and one process (``kernels.pack_minutes``, symflow.kernels.compute_blocks):
    one start-up, one read of the data and one compilation for all, each block its own file
    with the same bytes as its own job's. A pack is cut from one column j of the Gram matrix
    (the train blocks i <= j, then the val and test rows), whose blocks every m > j B asks
    for alike, so growing m adds packs and never changes one. One rule per pack,
    ``compute_gram_block_pack_<digest>``, without params, reading only the members' one data
    file: the members' outputs carry the same rerun record as their own jobs', so packing
    or not reruns nothing; the plan counts them all as ``compute_gram_block_pack``."""

    rule: ClassVar[str] = "compute_gram_block_pack"
    stage: ClassVar[str] = "kernel blocks"
    device: ClassVar[str] = "gpu"
    KIND: ClassVar[str] = "pack"
    blocks: tuple[Block, ...]

    @staticmethod
    def member_key(job: Block) -> str:
        return job.output()

    def folder(self) -> str:
        return f"{self.blocks[0].folder()}/{self.KIND}/{self.digest}"

    def benchmark(self):
        return f"benchmarks/kernels/{self.folder()}.tsv"

    def inputs(self, jobs):  # its members' one data file, once (as each member's own job)
        return self.blocks[0].inputs(jobs)

    def settings(self, jobs):  # no params: a block's file has the same rerun record either way
        return {}

    def cost(self, config):
        return costs.block_pack_cost(config, self.blocks)


@dataclass(frozen=True)
class Audit(Job):
    """Thm 4.1's invariance of one (architecture, transform, seed), checked in float64."""

    rule: ClassVar[str] = "audit_symmetry_pair"
    stage: ClassVar[str] = "kernel blocks"
    dataset: str
    arch: str
    hp: str
    transform: str
    seed: int

    def outputs(self):
        return {"csv": f"results/audit/{self.dataset}/{self.arch}/{self.hp}/{self.transform}/s{self.seed}.csv"}

    def inputs(self, jobs):
        from symflow.groups import IDENTITY

        return {
            "identity": ref(jobs.data(IDENTITY, 0, self.dataset)),
            "transformed": ref(jobs.data(self.transform, self.seed, self.dataset)),
        }

    def settings(self, jobs):
        return _audit_settings(jobs)

    def cost(self, config):
        return costs.audit_cost(config, self.arch)


def _audit_settings(jobs: Jobs) -> dict:
    k = jobs.config["kernels"]
    return {"audit_size": k["audit_size"], "tolerance": k["audit_tolerance"]}


@dataclass(frozen=True)
class EqualityAudit(Job):
    """A kernel equality the registry declares (LCN_inf = VEC_inf)."""

    rule: ClassVar[str] = "audit_kernel_equality"
    stage: ClassVar[str] = "kernel blocks"
    dataset: str
    arch_a: str
    arch_b: str
    hp: str

    def outputs(self):
        return {"csv": f"results/audit/{self.dataset}/{self.arch_a}={self.arch_b}/{self.hp}/identity/s0.csv"}

    def inputs(self, jobs):
        from symflow.groups import IDENTITY

        return {"data": ref(jobs.data(IDENTITY, 0, self.dataset))}

    def settings(self, jobs):
        return _audit_settings(jobs)

    def cost(self, config):
        return max(costs.audit_cost(config, self.arch_a), costs.audit_cost(config, self.arch_b), key=lambda c: c.seconds)


@dataclass(frozen=True)
class GatherAudit(_Fixed):
    rule: ClassVar[str] = "gather_symmetry_audit"
    stage: ClassVar[str] = "kernel blocks"
    OUTPUTS: ClassVar[dict[str, str]] = {"csv": "results/symmetry_audit.csv"}
    BENCHMARK: ClassVar[str] = "benchmarks/audit/gather_symmetry_audit.tsv"

    def inputs(self, jobs):
        return {"rows": [ref(a) for a in jobs.audits()]}


# -- kernel regression ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Regression(Job):
    """Kernel regression on the first m training examples: predictions (h5), metrics row (csv)."""

    rule: ClassVar[str] = "fit_kernel_regression"
    stage: ClassVar[str] = "regression"
    dataset: str
    arch: str
    hp: str
    kspec: str
    transform: str
    seed: int
    m: int
    kernel: str

    def outputs(self):
        stem = (
            f"results/regression/{self.dataset}/{self.arch}/{self.hp}/{self.kspec}/{self.transform}/"
            f"s{self.seed}/m{self.m}/{self.kernel}"
        )
        return {"h5": f"{stem}.h5", "csv": f"{stem}.csv"}

    def inputs(self, jobs):
        src, data_seed = jobs.kernel_source(self.arch, self.transform, self.seed)
        out: dict[str, Any] = {
            "blocks": [ref(b) for b in jobs.blocks(self)],
            "data": ref(jobs.data(src, data_seed, self.dataset)),
        }
        if jobs.reuses_untransformed(self.arch, self.transform):
            out["audit"] = ref(Audit(self.dataset, self.arch, self.hp, self.transform, self.seed))
        return out

    def settings(self, jobs):
        return {"ridge_grid": list(jobs.config["regression"]["ridge_grid"])}

    def cost(self, config):
        return costs.regression_cost(config, self.m)

    def main_output(self):
        return Ref(self, "h5")


# -- finite networks: eta0, training, ensembles ----------------------------------------------------


@dataclass(frozen=True)
class Eta0(Job):
    """eta0 of one finite network (shared by both recipes)."""

    rule: ClassVar[str] = "estimate_eta0"
    stage: ClassVar[str] = "eta0"
    device: ClassVar[str] = "gpu"
    dataset: str
    arch: str
    width: int
    init: str
    hp: str
    transform: str
    m: int
    seed: int
    member: int

    def outputs(self):
        return {"json": f"results/sgd/{_run_stem(self)}/eta0/m{self.m}/s{self.seed}/i{self.member}.json"}

    def inputs(self, jobs):
        return {"data": ref(jobs.data(self.transform, self.seed, self.dataset))}

    def settings(self, jobs):
        s = jobs.config["sgd"]
        out = {"mode": s["lr_estimate"], "size": s["lr_estimate_size"]}
        if s["lr_estimate"] == "mc":
            out["samples"] = s["lr_estimate_samples"]
        return out

    def cost(self, config):
        return costs.eta0_cost(config, self.arch, self.width, self.m)


@dataclass(frozen=True)
class Eta0Pack(_Packed):
    """The eta0 estimates of a pack's network and data shape (``sgd.pack`` > 1), made one
    after another by one process: one start-up and one compilation of the network's NTK for
    all of them, and the same numbers as estimate_eta0 jobs (the same code, run in turn).
    One rule per pack, ``estimate_eta0_pack_<digest>``; the plan counts them all as
    ``estimate_eta0_pack``."""

    rule: ClassVar[str] = "estimate_eta0_pack"
    stage: ClassVar[str] = "eta0"
    device: ClassVar[str] = "gpu"
    KIND: ClassVar[str] = "eta0pack"
    SETTINGS: ClassVar[str] = "eta0s"
    eta0s: tuple[Eta0, ...]

    @staticmethod
    def member_key(job: Eta0) -> str:
        return job.output()

    def cost(self, config):
        return costs.eta0_pack_cost(config, self.eta0s)


@dataclass(frozen=True)
class Run(TrainingRun, Job):
    """One finite network trained by SGD: metrics row, predictions, learning curve. Its
    fields are the run's record (symflow.runs.TrainingRun), which the training code takes."""

    rule: ClassVar[str] = "train_sgd"
    stage: ClassVar[str] = "sgd"
    device: ClassVar[str] = "gpu"

    def folder(self) -> str:
        return f"{_run_stem(self)}/{self.recipe}/m{self.m}/s{self.seed}/i{self.member}"

    def outputs(self):
        d = f"results/sgd/{self.folder()}"
        return {"metrics": f"{d}/metrics.csv", "predictions": f"{d}/predictions.h5", "curve": f"{d}/curve.csv"}

    def benchmark(self):
        return f"benchmarks/sgd/{self.folder()}.tsv"

    def checkpoint(self) -> str:
        """Not an output (Snakemake deletes the outputs of a job it reruns): resumed from."""
        return f"checkpoints/sgd/{self.folder()}/state.msgpack"

    def eta0(self) -> Eta0:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(Eta0)}
        return Eta0(**fields)

    def inputs(self, jobs):
        return {"data": ref(jobs.data(self.transform, self.seed, self.dataset)), "eta0": ref(self.eta0())}

    def settings(self, jobs):
        s = jobs.config["sgd"]
        return {
            **{key: s.get(key) for key in RUN_SETTINGS},
            "recipe": dict(s["recipes"][self.recipe]),
        }

    def speed(self, jobs):
        s = jobs.config["sgd"]
        return {"checkpoint_every": int(s["checkpoint_every"]), "keep_checkpoint": int(bool(s["keep_checkpoints"]))}

    def cost(self, config):
        return costs.sgd_cost(config, self.arch, self.width, self.m)

    def checkpoint_loss(self, config):
        return costs.checkpoint_loss_seconds(config, [self])

    def main_output(self):
        return Ref(self, "predictions")


@dataclass(frozen=True)
class Pack(_Packed):
    """Several runs of one network and data shape trained as one program (``sgd.pack`` > 1,
    symflow.train.run_sgd_packed): each run keeps its own outputs, log, checkpoint and
    settings. One rule per pack, ``train_sgd_pack_<digest>``; the plan counts them all as
    ``train_sgd_pack``."""

    rule: ClassVar[str] = "train_sgd_pack"
    stage: ClassVar[str] = "sgd"
    device: ClassVar[str] = "gpu"
    KIND: ClassVar[str] = "pack"
    SETTINGS: ClassVar[str] = "runs"
    runs: tuple[Run, ...]

    @staticmethod
    def member_key(job: Run) -> str:
        return job.folder()

    def cost(self, config):
        return costs.pack_cost(config, self.runs)

    def checkpoint_loss(self, config):
        return costs.checkpoint_loss_seconds(config, self.runs, packed=True)


@dataclass(frozen=True)
class _EnsembleOf(Job):
    """The fields of k members' ensemble (members i0 .. i{k-1} of one run)."""

    dataset: str
    arch: str
    width: int
    init: str
    hp: str
    transform: str
    recipe: str
    m: int
    seed: int
    k: int

    def folder(self) -> str:
        return f"{_run_stem(self)}/{self.recipe}/m{self.m}/s{self.seed}/k{self.k}"

    def members(self) -> list[Run]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "k"}
        return [Run(**fields, member=i) for i in range(self.k)]


@dataclass(frozen=True)
class Ensemble(_EnsembleOf):
    """The mean of k members' predictions (members i0 .. i{k-1} of one run)."""

    rule: ClassVar[str] = "average_ensemble"
    stage: ClassVar[str] = "sgd"

    def outputs(self):
        d = f"results/ensembles/{self.folder()}"
        return {"mean": f"{d}/mean.h5", "metrics": f"{d}/metrics.csv"}

    def inputs(self, jobs):
        members = self.members()
        return {
            "predictions": [Ref(r, "predictions") for r in members],
            "metrics": [Ref(r, "metrics") for r in members],
        }

    def main_output(self):
        return Ref(self, "mean")


@dataclass(frozen=True)
class SDist(_EnsembleOf):
    """Fig. S1's S-Dist of an ensemble against the kernel and against GAP_n's ensemble."""

    rule: ClassVar[str] = "compute_s_dist"
    stage: ClassVar[str] = "sgd"

    def outputs(self):
        return {"csv": f"results/ensembles/{self.folder()}/sdist.csv"}

    def ensemble(self) -> Ensemble:
        return Ensemble(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    def inputs(self, jobs):
        gap = jobs.figS1_gap_reference(self)
        return {
            "ensemble": Ref(self.ensemble(), "mean"),
            "inf": Ref(jobs.regression(self.arch, self.transform, self.seed, self.m, "ntk", self.dataset), "h5"),
            "gap": Ref(gap, "mean"),
        }

    def settings(self, jobs):
        return {"gap_transform": jobs.figS1_gap_reference(self).transform}


@dataclass(frozen=True)
class CoupledAudit(_Fixed):
    """Thm 4.1 at finite width: networks trained on tau D from W against D from W tau (symflow.coupled)."""

    rule: ClassVar[str] = "audit_coupled_training"
    stage: ClassVar[str] = "sgd"
    OUTPUTS: ClassVar[dict[str, str]] = {"csv": "results/coupled_audit.csv"}
    BENCHMARK: ClassVar[str] = "benchmarks/audit/coupled_training.tsv"

    def inputs(self, jobs):
        from symflow.groups import IDENTITY

        archs = sorted({a for a, _ in jobs.coupled_pairs()})
        return {"identity": ref(jobs.data(IDENTITY, 0)), "eta0": [ref(jobs.coupled_eta0(a)) for a in archs]}

    def settings(self, jobs):
        from symflow.coupled import STEPS

        s, e = jobs.config["sgd"], jobs.exp["fig2"]
        pairs = jobs.coupled_pairs()
        return {
            "dataset": jobs.dataset,
            "hp": jobs.hp,
            "pairs": [list(p) for p in pairs],
            "widths": jobs.widths(sorted({a for a, _ in pairs})),
            "recipes": {r: dict(s["recipes"][r]) for r in e["recipes"]},
            "seed": int(e["seeds"][0]),
            "m": int(e["m"]),
            "momentum": s["momentum"],
            "batch_size": s["batch_size"],
            "steps": STEPS,
        }

    def cost(self, config):
        pairs = len(Jobs(config).coupled_pairs()) * len(config["experiments"]["fig2"]["recipes"])
        return costs.coupled_audit_cost(config, pairs)


# ImageNet (Sec. 6.2, Fig. 5, App. B.2, Figs. S3, S4, S7-S9): only where the config has an
# `imagenet` section (symflow.imagenet; docs/imagenet.md)


@dataclass(frozen=True)
class ConvertImageNet(_Fixed):
    """The user's ILSVRC2012 converted once into ArrayRecord shards (symflow.imagenet.data.convert)."""

    rule: ClassVar[str] = "convert_imagenet"
    stage: ClassVar[str] = "imagenet"
    OUTPUTS: ClassVar[dict[str, str]] = {"shards": "results/imagenet/shards"}
    BENCHMARK: ClassVar[str] = "benchmarks/imagenet/convert.tsv"

    # inputs: none; the user's folder (imagenet.root) is a location, checked by the conversion

    def settings(self, jobs):
        inet = jobs.imagenet
        return {"md5": inet["md5"], "shard_size": inet["shard_size"], "train_images": inet["train_images"]}

    def speed(self, jobs):
        return {"root": jobs.imagenet["root"]}

    def cost(self, config):
        return costs.imagenet_convert_cost(config)


@dataclass(frozen=True)
class ImageNetRun(Job):
    """One ImageNet training run (symflow.imagenet.train.run_imagenet): run.h5 (history and
    provenance), a metrics row (RUN_COLUMNS, stage imagenet) and its learning-curve point.
    `tag` names the recipe and subset settings (symflow.imagenet.jobs.settings_tag). Its
    device is imagenet.resources.gpus_per_job's, not resources.gpu's (:meth:`on_gpu`)."""

    rule: ClassVar[str] = "train_imagenet"
    stage: ClassVar[str] = "imagenet"
    tag: str
    model: str
    transform: str
    m: int
    seed: int

    def folder(self) -> str:
        return f"{self.tag}/{self.model}/{self.transform}/m{self.m}/s{self.seed}"

    def outputs(self):
        d = f"results/imagenet/runs/{self.folder()}"
        return {"run": f"{d}/run.h5", "metrics": f"{d}/metrics.csv", "point": f"{d}/point.csv"}

    def benchmark(self):
        return f"benchmarks/imagenet/{self.folder()}.tsv"

    def checkpoint(self) -> str:
        """Not an output (Snakemake deletes the outputs of a job it reruns): resumed from."""
        return f"checkpoints/imagenet/{self.folder()}"

    def inputs(self, jobs):
        return {"shards": ref(ConvertImageNet())}

    def settings(self, jobs):
        from symflow.imagenet.jobs import recipe_settings

        return recipe_settings(jobs.imagenet)

    def speed(self, jobs):
        knobs = jobs.imagenet["knobs"]
        return {
            "workers": int(knobs["workers"]),
            "input_threads": int(knobs["threads"]),
            "log_every": int(knobs["log_every"]),
            "checkpoint_every": int(knobs["checkpoint_every"]),
        }

    def cost(self, config):
        return costs.imagenet_train_cost(config, self.model, self.m)

    def on_gpu(self, config):
        return self.cost(config).gpu


# -- tables, figures, claims and the report --------------------------------------------------------


@dataclass(frozen=True)
class Table(Job):
    """A tidy table of metrics rows: one figure's runs, or every run (runs.csv)."""

    rule: ClassVar[str] = "aggregate_runs"
    stage: ClassVar[str] = "figures"
    table: str

    def outputs(self):
        return {"csv": f"results/tables/{self.table}.csv"}

    def inputs(self, jobs):
        return {"rows": jobs.all_rows() if self.table == "runs" else jobs.figure_rows(self.table)}


@dataclass(frozen=True)
class GatherSDist(_Fixed):
    rule: ClassVar[str] = "gather_s_dist"
    stage: ClassVar[str] = "figures"
    OUTPUTS: ClassVar[dict[str, str]] = {"csv": "results/tables/figS1.csv"}
    BENCHMARK: ClassVar[str] = "benchmarks/tables/figS1.tsv"

    def inputs(self, jobs):
        return {"rows": [ref(s) for s in jobs.figS1_s_dists()]}


@dataclass(frozen=True)
class Figure(Job):
    rule: ClassVar[str] = "plot_figure"
    stage: ClassVar[str] = "figures"
    figure: str

    def outputs(self):
        return {"pdf": f"results/{self.figure}.pdf", "png": f"results/{self.figure}.png"}

    def benchmark(self):
        return f"benchmarks/figures/{self.figure}.tsv"

    def inputs(self, jobs):
        return {"table": ref(GatherSDist() if self.figure == "figS1" else Table(self.figure))}

    def settings(self, jobs):
        return {"options": jobs.figure_options(self.figure)}

    def cost(self, config):
        return costs.PLOT


@dataclass(frozen=True)
class FigS2(_Fixed):
    rule: ClassVar[str] = "plot_figS2"
    stage: ClassVar[str] = "figures"
    OUTPUTS: ClassVar[dict[str, str]] = {"pdf": "results/figS2.pdf", "png": "results/figS2.png"}
    BENCHMARK: ClassVar[str] = "benchmarks/figures/figS2.tsv"

    def inputs(self, jobs):
        shown_seed = jobs.config["figS2"]["seed"]  # the data files whose images Fig. S2 shows
        return {"data": [ref(jobs.data(t, shown_seed, jobs.figs2_dataset)) for t in jobs.figS2_transforms()]}

    def settings(self, jobs):
        return {"transforms": jobs.figS2_transforms(), "images": jobs.config["figS2"]["images"]}

    def cost(self, config):
        return costs.PLOT


@dataclass(frozen=True)
class GatherImageNet(_Fixed):
    """The runs' points, their histories, and the learning-curve slopes (symflow.imagenet.curves)."""

    rule: ClassVar[str] = "gather_imagenet"
    stage: ClassVar[str] = "figures"
    OUTPUTS: ClassVar[dict[str, str]] = {
        "points": "results/tables/imagenet_points.csv",
        "history": "results/tables/imagenet_history.csv",
        "slopes": "results/tables/imagenet_slopes.csv",
    }
    BENCHMARK: ClassVar[str] = "benchmarks/tables/imagenet.tsv"

    def inputs(self, jobs):
        runs = jobs.imagenet_runs()
        return {"points": [Ref(r, "point") for r in runs], "runs": [Ref(r, "run") for r in runs]}


@dataclass(frozen=True)
class ImageNetFigure(Job):
    """Fig. 5, S3 or S4, from the gathered points (and histories)."""

    rule: ClassVar[str] = "plot_imagenet_figure"
    stage: ClassVar[str] = "figures"
    figure: str

    def outputs(self):
        return {"pdf": f"results/{self.figure}.pdf", "png": f"results/{self.figure}.png"}

    def benchmark(self):
        return f"benchmarks/figures/{self.figure}.tsv"

    def inputs(self, jobs):
        return {"points": Ref(GatherImageNet(), "points"), "history": Ref(GatherImageNet(), "history")}

    def settings(self, jobs):
        return {"options": jobs.imagenet_figure_options(self.figure)}


@dataclass(frozen=True)
class ImageNetSamples(ImageNetFigure):
    """Fig. S7, S8 (rotated, the first and second seed) or S9 (clean): test images from the shards."""

    rule: ClassVar[str] = "plot_imagenet_samples"

    def inputs(self, jobs):
        return {"shards": ref(ConvertImageNet())}


@dataclass(frozen=True)
class ReportTables(_Fixed):
    rule: ClassVar[str] = "write_report_tables"
    stage: ClassVar[str] = "figures"
    OUTPUTS: ClassVar[dict[str, str]] = {
        "config": "results/tables/config.yaml",
        "paper": "results/tables/paper_values.csv",
    }
    BENCHMARK: ClassVar[str] = "benchmarks/tables/report_tables.tsv"

    def settings(self, jobs):
        return {"config": without_speed_knobs(jobs.config)}


@dataclass(frozen=True)
class Claims(_Fixed):
    rule: ClassVar[str] = "evaluate_claims"
    stage: ClassVar[str] = "figures"
    OUTPUTS: ClassVar[dict[str, str]] = {"csv": "results/claims.csv"}
    BENCHMARK: ClassVar[str] = "benchmarks/claims/claims.tsv"

    def inputs(self, jobs):
        out = {name: ref(Table(name)) for name in ["runs", *TABLES]}
        if jobs.imagenet:
            out["imagenet_slopes"] = Ref(GatherImageNet(), "slopes")
        if jobs.coupled_pairs():
            out["coupled"] = ref(CoupledAudit())
        # no Fig. S1 where the source has no rotation path (experiments.figS1.t: [])
        figS1 = {"figS1": ref(GatherSDist())} if jobs.figS1_s_dists() else {}
        return {
            **out,
            "claims": Source(_package_file("claims.yaml")),
            "audit": ref(GatherAudit()),
            **figS1,
            "predictions": ref(GatherPredictions()),
        }


@dataclass(frozen=True)
class FailedRuns(_Fixed):
    rule: ClassVar[str] = "list_failed_runs"
    stage: ClassVar[str] = "figures"
    OUTPUTS: ClassVar[dict[str, str]] = {
        "csv": "results/tables/failed_runs.csv",
        "summary": "results/tables/training.csv",
    }
    BENCHMARK: ClassVar[str] = "benchmarks/tables/failed_runs.tsv"

    def inputs(self, jobs):
        return {"runs": ref(Table("runs"))}


@dataclass(frozen=True)
class GatherPredictions(_Fixed):
    """Every run's per-image results on the test set, and Fig. S1's per-image S-Dist
    (symflow.predictions): what the claims' paired intervals read."""

    rule: ClassVar[str] = "gather_predictions"
    stage: ClassVar[str] = "figures"
    OUTPUTS: ClassVar[dict[str, str]] = {"h5": "results/tables/predictions.h5"}
    BENCHMARK: ClassVar[str] = "benchmarks/tables/predictions.tsv"

    def inputs(self, jobs):
        from symflow.groups import IDENTITY

        rows = [r for r in jobs.all_rows() if r.job.main_output() is not None]
        s_dists = jobs.figS1_s_dists()
        return {
            "outputs": [r.job.main_output() for r in rows],
            "labels": [ref(jobs.data(IDENTITY, 0, ds)) for ds in sorted({r.job.dataset for r in rows})],
            "sdist_mean": [Ref(s.ensemble(), "mean") for s in s_dists],
            "sdist_inf": [s.inputs(jobs)["inf"] for s in s_dists],
            "sdist_gap": [s.inputs(jobs)["gap"] for s in s_dists],
        }


@dataclass(frozen=True)
class Curves(_Fixed):
    """Every finite network's training curve (each run's curve.csv) in one tidy table, a row per
    run and evaluation with the run's identity and the figures that show it."""

    rule: ClassVar[str] = "gather_curves"
    stage: ClassVar[str] = "figures"
    OUTPUTS: ClassVar[dict[str, str]] = {"csv": "results/tables/curves.csv"}
    BENCHMARK: ClassVar[str] = "benchmarks/tables/curves.tsv"

    def inputs(self, jobs):  # each figure's runs' curves (a run in two figures is in both lists)
        runs = {r for f in CURVE_FIGURES for r in jobs.figure_runs(f)}
        return {
            **{f: [Ref(r, "curve") for r in jobs.figure_runs(f)] for f in CURVE_FIGURES},
            "metrics": [Ref(r, "metrics") for r in sorted(runs, key=lambda r: r.output("metrics"))],
        }

    def settings(self, jobs):
        # which figures show each run (the `figures` column): a run can move between figures
        # without the set of input files changing, which alone would not rerun the gather
        import hashlib
        import json

        shown = {f: [r.folder() for r in jobs.figure_runs(f)] for f in CURVE_FIGURES}
        return {"figures": hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:16]}


@dataclass(frozen=True)
class CurvesFigure(Job):
    """Train, validation and test accuracy against epochs of the finite networks of one figure."""

    rule: ClassVar[str] = "plot_curves"
    stage: ClassVar[str] = "figures"
    figure: str

    def outputs(self):
        return {"pdf": f"results/{self.figure}_curves.pdf", "png": f"results/{self.figure}_curves.png"}

    def benchmark(self):
        return f"benchmarks/figures/{self.figure}_curves.tsv"

    def inputs(self, jobs):  # and, for the chance line 1 / K, a data file of each dataset the runs read
        first = {}
        for r in jobs.figure_runs(self.figure):
            first.setdefault(r.dataset, r)
        return {"curves": ref(Curves()), "data": [r.inputs(jobs)["data"] for _, r in sorted(first.items())]}

    def cost(self, config):
        return costs.PLOT


@dataclass(frozen=True)
class ReportSummary(_Fixed):
    """The report's first page's facts (symflow.report): what was run, what it decides."""

    rule: ClassVar[str] = "write_report_summary"
    stage: ClassVar[str] = "figures"
    OUTPUTS: ClassVar[dict[str, str]] = {"rst": "results/report/summary.rst"}
    BENCHMARK: ClassVar[str] = "benchmarks/report/summary.tsv"

    def inputs(self, jobs):
        return {
            "claims": ref(Claims()),
            "runs": ref(Table("runs")),
            "audit": ref(GatherAudit()),
            "training": Ref(FailedRuns(), "summary"),
        }

    def settings(self, jobs):
        return {"config": without_speed_knobs(jobs.config), "dataset": jobs.dataset}


@dataclass(frozen=True)
class All(_Fixed):
    rule: ClassVar[str] = "all"
    stage: ClassVar[str] = "figures"
    OUTPUTS: ClassVar[dict[str, str]] = {}
    BENCHMARK: ClassVar[str] = ""

    def inputs(self, jobs):
        return {"targets": jobs.targets()}

    def cost(self, config):
        from symflow.costs import Cost

        return Cost(0.0, 0)


@dataclass(frozen=True)
class Ref:
    """One output of a job, as another job's input."""

    job: Job
    name: str

    @property
    def path(self) -> str:
        return self.job.output(self.name)


@dataclass(frozen=True)
class Source:
    """A file no rule makes (the shipped sample's checksums, the claims file)."""

    path: str


Input = Ref | Source


def ref(job: Job, name: str | None = None) -> Ref:
    if name is None:
        (name,) = job.outputs()
    return Ref(job, name)


# -- names of paths ------------------------------------------------------------------------------

FIGURES = ("fig2", "fig3", "fig4", "figS1", "figS5", "figS6")
IMAGENET_FIGURES = ("fig5", "figS3", "figS4")  # plot_imagenet_figure
IMAGENET_SAMPLES = ("figS7", "figS8", "figS9")  # plot_imagenet_samples
TABLES = ("fig2", "fig3", "fig4", "figS5", "figS6")  # gathered by aggregate_runs (Fig. S1's by gather_s_dist)
CURVE_FIGURES = ("fig2", "fig3", "fig4", "figS1", "figS5")  # the figures with finite networks (plot_curves)
INITS = ("gaussian", "uniform")
FIGS1_GAP_T = 0.0  # Fig. S1's GAP_n ensembles train on the clean end of the path
# Fig. 4's finite networks: (architecture, transform)
FIG4_NETWORKS = (("VEC", "identity"), ("LCN", "identity"), ("VEC", "o3_pixel"))


def fig2_trained(fig2: Mapping) -> list[tuple[str, str]]:
    """(architecture, recipe) of Fig. 2's finite networks: every architecture with every
    recipe, unless ``recipe_architectures`` names the architectures of a recipe."""
    chosen = fig2.get("recipe_architectures") or {}
    return [
        (a, r)
        for r in fig2["recipes"]
        for a in fig2["architectures"]
        if a in (chosen.get(r) or fig2["architectures"])
    ]


def fig2_network_transforms(fig2: Mapping, arch: str) -> list[str]:
    """The transforms of Fig. 2 on which `arch`'s finite networks train (``network_transforms``;
    all of the figure's where the architecture is not named)."""
    named = (fig2.get("network_transforms") or {}).get(arch)
    return [t for t in fig2["transforms"] if named is None or t in named]


class Jobs:
    """The job graph of one validated config."""

    def __init__(self, config: Mapping, source_digest: str | None = None):
        """`source_digest`: the data source's identity (``symflow.sources.source_digest``); read
        from the source folder when not given."""
        from symflow.architectures import ModelHP
        from symflow.configuration import dataset_id

        self.config = config
        data = config["data"]
        if source_digest is None:
            from symflow.sources import source_digest as digest_of

            source_digest = digest_of(data)
        self.digest = source_digest
        self.dataset = dataset_id(data, source_digest)
        figs2_resolution = config["figS2"]["resolution"] or data["resolution"]
        self.figs2_dataset = dataset_id({**data, "resolution": figs2_resolution}, source_digest)
        self.flip_m = 2 * data["n_train"] if config["experiments"]["fig4"]["flip"] else None
        self.flip_dataset = dataset_id({**data, "flip": True}, source_digest)
        self.hp = ModelHP.from_config(config["model"]).tag
        self.kspec = f"{config['kernels']['backend']}-{config['kernels']['dtype']}"
        self.kernels = list(config["regression"]["kernels"])
        self.exp = config["experiments"]
        self.imagenet = config.get("imagenet")  # None: no ImageNet jobs

    # -- names -----------------------------------------------------------------------------

    @property
    def datasets(self) -> list[str]:
        return sorted({self.dataset, self.figs2_dataset} | ({self.flip_dataset} if self.flip_m else set()))

    def width(self, arch: str) -> int:
        from symflow.architectures import ARCHITECTURES

        return int(self.config["sgd"]["widths"].get(arch, ARCHITECTURES.get(arch).default_width))

    def widths(self, archs) -> dict[str, int]:
        """The width of each architecture a figure shows (so another's width does not touch it)."""
        return {a: self.width(a) for a in archs}

    def block_size(self, arch: str) -> int:
        from symflow.kernels import block_size_for

        return block_size_for(self.config["kernels"]["block_size"], arch)

    def dataset_of(self, m: int) -> str:
        """Fig. 4's flipped point (m = 2 n_train, no other m is that large) has its own data."""
        return self.flip_dataset if self.flip_m and int(m) == self.flip_m else self.dataset

    def fig4_sizes(self) -> list[int]:
        return list(self.exp["fig4"]["m"]) + ([self.flip_m] if self.flip_m else [])

    def figS1_transforms(self) -> list[str]:
        from symflow.groups import spec_id

        return [spec_id("so3_path", t) for t in self.exp["figS1"]["t"]]

    def figS2_transforms(self) -> list[str]:
        from symflow.groups import spec_id

        fig = self.config["figS2"]
        return list(fig["transforms"]) + [spec_id("so3_path", t) for t in self.config["path_t"]]

    # -- constructors ------------------------------------------------------------------------

    def data(self, transform: str, seed: int, dataset: str | None = None) -> Data:
        """The data file a run (or regression) of `seed` on `transform` reads: its data_seed is
        `seed`, or 0 where the transform's group has no random draws."""
        from symflow.groups import canonical_seed

        return Data(dataset or self.dataset, transform, canonical_seed(transform, int(seed)))

    def regression(self, arch, transform, seed, m, kernel, dataset=None) -> Regression:
        """A kernel regression; where its kernel does not depend on tau (the identity, or a group
        the architecture is invariant to, whose kernel is the untransformed one), every seed is
        the same job, seed 0's: its predictions would be the same."""
        from symflow.groups import canonical_seed

        seed = 0 if self.reuses_untransformed(arch, transform) else canonical_seed(transform, int(seed))
        return Regression(dataset or self.dataset_of(m), arch, self.hp, self.kspec, transform, int(seed), int(m), kernel)

    def run(self, arch, width, transform, recipe, m, seed, member=0, init="gaussian", dataset=None) -> Run:
        ds = dataset or self.dataset_of(m)
        return Run(ds, arch, int(width), init, self.hp, transform, recipe, int(m), int(seed), int(member))

    def ensemble(self, arch, width, transform, recipe, m, seed, k, init="gaussian") -> Ensemble:
        return Ensemble(self.dataset, arch, int(width), init, self.hp, transform, recipe, int(m), int(seed), int(k))

    # -- what each figure shows --------------------------------------------------------------

    def figure_rows(self, fig: str) -> list[Ref]:
        """The metrics rows a figure's table gathers (regressions' csv, runs' metrics)."""
        e, out = self.exp.get(fig), []
        if fig == "fig2":
            for arch in e["architectures"]:
                for transform in e["transforms"]:
                    for seed in e["seeds"]:
                        out += [
                            ref(self.regression(arch, transform, seed, e["m"], kernel), "csv") for kernel in self.kernels
                        ]
                        out += [
                            ref(self.run(arch, self.width(arch), transform, r, e["m"], seed), "metrics")
                            for a, r in fig2_trained(e)
                            if a == arch and transform in fig2_network_transforms(e, arch)
                        ]
        elif fig == "fig3":
            for transform in e["transforms"]:
                for seed in e["seeds"]:
                    out.append(ref(self.regression("VEC", transform, seed, e["m"], "ntk"), "csv"))
                    out += [
                        ref(self.run("VEC", w, transform, r, e["m"], seed), "metrics")
                        for w in e["widths"]
                        for r in e["recipes"]
                    ]
        elif fig == "fig4":
            for seed in e["seeds"]:
                for m in self.fig4_sizes():
                    out += [
                        ref(self.regression("VEC", "identity", seed, m, kernel), "csv") for kernel in self.kernels
                    ]
                    out += [
                        ref(self.run(a, self.width(a), t, e["recipe"], m, seed), "metrics") for a, t in FIG4_NETWORKS
                    ]
        elif fig == "figS5":
            out = [
                ref(self.run(a, self.width(a), t, r, e["m"], s, init=init), "metrics")
                for a in e["architectures"]
                for t in e["transforms"]
                for r in e["recipes"]
                for s in e["seeds"]
                for init in INITS
            ]
        elif fig == "figS6":
            out = [
                ref(self.regression(a, t, s, m, kernel), "csv")
                for a in e["architectures"]
                for t in e["transforms"]
                for s in e["seeds"]
                for m in e["m"]
                for kernel in self.kernels
            ]
        else:
            raise ValueError(f"no table for figure {fig!r}")
        return out

    def figS1_s_dists(self) -> list[SDist]:
        """Fig. S1: an S-Dist (and its ensemble) of VEC_n at each point of the so3_path."""
        e = self.exp["figS1"]
        return [
            SDist(**dataclasses.asdict(self.ensemble("VEC", w, t, e["recipe"], e["m"], seed, e["ensemble"])))
            for w in e["widths"]
            for t in self.figS1_transforms()
            for seed in e["seeds"]
        ]

    def figS1_gap_reference(self, s: SDist) -> Ensemble:
        """GAP_n's ensemble (same width, recipe, k) on the clean end of the path."""
        from symflow.groups import spec_id

        return dataclasses.replace(s.ensemble(), arch="GAP", transform=spec_id("so3_path", FIGS1_GAP_T))

    def figure_runs(self, fig: str) -> list[Run]:
        """The finite-network runs a figure shows (Fig. S1: its ensembles' members, GAP_n's included)."""
        if fig == "figS1":
            runs = set()
            for s in self.figS1_s_dists():
                runs.update(s.ensemble().members())
                runs.update(self.figS1_gap_reference(s).members())
        else:
            runs = {r.job for r in self.figure_rows(fig) if isinstance(r.job, Run)}
        return sorted(runs, key=lambda r: r.output("curve"))

    def all_rows(self) -> list[Ref]:
        """Every metrics row: the figures' runs and Fig. S1's ensembles (their mean's row)."""
        rows = {r for t in TABLES for r in self.figure_rows(t)}
        rows |= {ref(s.ensemble(), "metrics") for s in self.figS1_s_dists()}
        rows |= {Ref(r, "metrics") for r in self.imagenet_runs()}
        return sorted(rows, key=lambda r: r.path)

    def main_output(self, row: Ref) -> Ref | None:
        """The per-image output behind a metrics row: a regression's predictions, a run's
        predictions.h5, an ensemble's mean.h5 (None for an ImageNet run: no per-image record)."""
        return row.job.main_output()

    def coupled_pairs(self) -> list[tuple[str, str]]:
        """(architecture, transform) of Fig. 2 whose finite networks Thm 4.1 claims invariant and
        the default trains (their eta0 on clean data sets the coupled runs' learning rate)."""
        from symflow.coupled import claimed_pairs

        e = self.exp["fig2"]
        trained = {a for a, _ in fig2_trained(e)}
        pairs = claimed_pairs([a for a in e["architectures"] if a in trained], e["transforms"])
        return [(a, t) for a, t in pairs if t in fig2_network_transforms(e, a)]

    def coupled_eta0(self, arch: str) -> Eta0:
        e = self.exp["fig2"]
        return self.run(arch, self.width(arch), "identity", "nn", e["m"], e["seeds"][0]).eta0()

    def figure_options(self, fig: str) -> dict:
        """Keyword arguments of the figure's plot function (what the config asks it to show)."""
        e = self.exp.get(fig, {})
        if fig == "fig2":
            return dict(
                architectures=e["architectures"],
                transforms=e["transforms"],
                m=e["m"],
                widths=self.widths(e["architectures"]),
            )
        if fig == "fig3":
            return dict(widths=e["widths"], transforms=e["transforms"], recipes=e["recipes"], m=e["m"])
        if fig == "fig4":
            return dict(
                sizes=self.fig4_sizes(),
                recipe=e["recipe"],
                widths=self.widths(sorted({a for a, _ in FIG4_NETWORKS})),
                fit_points=e["fit_points"],
                flip_m=self.flip_m,
            )
        if fig == "figS5":
            return dict(
                architectures=e["architectures"],
                transforms=e["transforms"],
                recipes=e["recipes"],
                m=e["m"],
                widths=self.widths(e["architectures"]),
            )
        if fig == "figS1":
            return {}
        if fig == "figS6":
            return dict(architectures=e["architectures"], transforms=e["transforms"], sizes=e["m"])
        raise ValueError(f"no figure {fig!r}")

    # -- ImageNet ----------------------------------------------------------------------------

    @functools.cached_property
    def imagenet_tag(self) -> str | None:
        """The digest that names the ImageNet runs' recipe and subsets (None without ImageNet)."""
        if not self.imagenet:
            return None
        from symflow.imagenet.jobs import settings_tag

        return settings_tag(self.imagenet)

    @functools.cached_property
    def _imagenet_runs(self) -> tuple[ImageNetRun, ...]:
        if not self.imagenet:
            return ()
        from symflow.imagenet.jobs import runs

        return tuple(ImageNetRun(self.imagenet_tag, r.model, r.transform, r.m, r.seed) for r in runs(self.imagenet))

    def imagenet_runs(self) -> list[ImageNetRun]:
        """Every ImageNet training run the figures ask for (symflow.imagenet.jobs.runs), each once."""
        return list(self._imagenet_runs)

    def imagenet_figure_options(self, fig: str) -> dict:
        """Keyword arguments of an ImageNet figure's plot function."""
        inet = self.imagenet
        if fig == "fig5":
            f = inet["fig5"]
            return dict(curve_models=f["curves"]["models"], transforms=f["curves"]["transforms"],
                        depth_models=f["depths"]["models"], quantities=f["quantities"])
        if fig in ("figS3", "figS4"):
            return dict(models=inet[fig]["models"], transforms=inet[fig]["transforms"])
        if fig in IMAGENET_SAMPLES:
            samples = inet["samples"]
            clean = fig == "figS9"
            return dict(transform="identity" if clean else samples["transform"],
                        seed=0 if clean else samples["seeds"][IMAGENET_SAMPLES.index(fig)],
                        images=samples["images"], image_size=inet["image_size"])
        raise ValueError(f"no ImageNet figure {fig!r}")

    # -- kernels -----------------------------------------------------------------------------

    def reuses_untransformed(self, arch: str, transform: str) -> bool:
        """Does a kernel on `transform` data come from the untransformed blocks (Thm 4.1)?

        Only for a group that moves the data (not the trivial group, whose data are the
        untransformed data) and that the architecture is claimed invariant to; the
        regression then also reads the symmetry audit of the pair, which must agree.
        """
        from symflow.architectures import ARCHITECTURES
        from symflow.groups import GROUPS, parse_spec

        spec = parse_spec(transform)
        return bool(
            self.config["kernels"]["reuse_invariant"]
            and not GROUPS.get(spec.group).trivial
            and ARCHITECTURES.get(arch).claims(spec.group, infinite=True)
        )

    def kernel_source(self, arch: str, transform: str, seed: int) -> tuple[str, int]:
        """(transform, data_seed) of the data whose blocks serve a kernel on `transform` data of
        a regression of `seed`."""
        from symflow.groups import IDENTITY, canonical_seed

        if self.reuses_untransformed(arch, transform):
            return IDENTITY, 0
        return transform, canonical_seed(transform, int(seed))

    def blocks(self, job: Regression) -> list[Block]:
        """Every block a regression on the first m examples reads (n_val, n_test: the dataset's)."""
        from symflow.configuration import parse_dataset_id
        from symflow.kernels import blocks_for

        src, data_seed = self.kernel_source(job.arch, job.transform, job.seed)
        bs = self.block_size(job.arch)
        sizes = parse_dataset_id(job.dataset)
        return [
            Block(job.dataset, job.arch, job.hp, job.kspec, src, data_seed, bs, split, i, j)
            for split, i, j in blocks_for(job.m, bs, sizes["n_val"], sizes["n_test"])
        ]

    def kernel_pairs(self) -> list[tuple[str, str, int]]:
        """(arch, transform, seed) of every kernel regression the experiments ask for: each is audited."""
        pairs = set()
        for row in self.all_rows():
            if isinstance(row.job, Regression):
                pairs.add((row.job.arch, row.job.transform, row.job.seed))
        e = self.exp["figS1"]
        pairs |= {("VEC", t, int(seed)) for t in self.figS1_transforms() for seed in e["seeds"]}  # S-Dist's VEC_inf
        return sorted(pairs)

    def audits(self) -> list[Job]:
        """Every audited claim: each (architecture, transform, seed) a regression uses, and
        each kernel equality the registry declares (Architecture.same_kernel_as)."""
        from symflow.architectures import ARCHITECTURES

        out: list[Job] = [Audit(self.dataset, a, self.hp, t, s) for a, t, s in self.kernel_pairs()]
        return out + [EqualityAudit(self.dataset, a.name, b, self.hp) for a in ARCHITECTURES for b in a.same_kernel_as]

    # -- the graph ---------------------------------------------------------------------------

    def source(self) -> Input:
        """What a data job reads: the extracted official batches, or the source folder's sums."""
        data = self.config["data"]
        if data["source"] == "official":
            return ref(Extract(data["official_dir"]))
        return Source(f"{self.source_folder()}/SHA256SUMS")

    def source_folder(self) -> str:
        """The folder a data job reads (a location: in its resources): the source's (symflow.sources)."""
        from symflow.sources import SOURCES

        return SOURCES.get(self.config["data"]["source"]).location(self.config["data"])

    def targets(self) -> list[Ref]:
        """The default target: figures, tables, the audit, the claims, the training curves (table and
        figures) and the report's first page."""
        jobs = [FigS2(), Table("runs"), GatherAudit(), ReportTables(), Claims(), FailedRuns()]
        shown = [f for f in FIGURES if f != "figS1" or self.exp["figS1"]["t"]]  # t = []: no Fig. S1
        jobs += [Figure(f) for f in shown]
        jobs += [Curves(), *(CurvesFigure(f) for f in CURVE_FIGURES if f in shown), ReportSummary()]
        if self.imagenet:
            jobs += [ImageNetFigure(f) for f in IMAGENET_FIGURES] + [ImageNetSamples(f) for f in IMAGENET_SAMPLES]
        return [Ref(j, name) for j in jobs for name in j.outputs()]

    def inputs(self, job: Job) -> dict[str, Input | list[Input]]:
        """What a job reads: named as the rule's inputs (the record's :meth:`Job.inputs`)."""
        return job.inputs(self)

    def input_paths(self, job: Job) -> dict[str, str | list[str]]:
        """The rule's input (for ``unpack``): each input's path."""

        return {
            name: [x.path for x in value] if isinstance(value, list) else value.path
            for name, value in self.inputs(job).items()
        }

    def walk(self, root: Job | None = None, packed: bool = True) -> dict[str, set[Job]]:
        """rule -> every job that `root` (the default target) needs, from scratch; with
        `packed` (and sgd.pack > 1), the packs that train runs in place of those runs."""
        seen: set[Job] = set()
        stack = [root or All()]
        while stack:
            job = stack.pop()
            if job in seen:
                continue
            seen.add(job)
            for upstream in _upstream(self.inputs(job)):
                maker = self.producer(upstream) if packed else upstream
                if maker not in seen:
                    stack.append(maker)
        out: dict[str, set[Job]] = {}
        for job in seen:
            out.setdefault(job.rule, set()).add(job)
        return out

    # -- packed jobs (sgd.pack > 1, kernels.pack_minutes > 0) ------------------------------------

    @functools.cached_property
    def _pack_of(self) -> dict[Job, _Packed]:
        """Each packed job's pack: runs and eta0s under sgd.pack (:meth:`_training_packs`),
        kernel blocks under kernels.pack_minutes (:meth:`_block_packs`). A job alone stays
        a job of its own rule."""
        unpacked = None
        out: dict[Job, _Packed] = {}
        if int(self.config["sgd"].get("pack", 1)) > 1:
            unpacked = self.walk(packed=False)
            out.update(self._training_packs(unpacked))
        if float(self.config["kernels"].get("pack_minutes", 0)) > 0:
            out.update(self._block_packs(unpacked or self.walk(packed=False)))
        return out

    def _training_packs(self, unpacked: dict[str, set[Job]]) -> dict[Job, _Packed]:
        """Runs pack when they share the network (arch, width, init, hp) and the data's
        shapes (dataset, m); the runs of such a group, sorted by recipe, transform, seed and
        member, are cut into ceil(n / sgd.pack) packs of near-equal size; their eta0
        estimates likewise (sorted by transform, seed, member)."""
        size = int(self.config["sgd"]["pack"])
        out: dict[Job, _Packed] = {}
        for record, pack, order in (
            (Run, Pack, lambda r: (r.recipe, r.transform, r.seed, r.member)),
            (Eta0, Eta0Pack, lambda e: (e.transform, e.seed, e.member)),
        ):
            groups: dict[tuple, list[Job]] = {}
            for job in unpacked.get(record.rule, ()):
                groups.setdefault((job.dataset, job.arch, job.width, job.init, job.hp, job.m), []).append(job)
            for jobs in groups.values():
                jobs.sort(key=order)
                count = -(-len(jobs) // size)
                for k in range(count):
                    chunk = tuple(jobs[k * len(jobs) // count : (k + 1) * len(jobs) // count])
                    if len(chunk) > 1:
                        out.update(dict.fromkeys(chunk, pack(chunk)))
        return out

    def _block_packs(self, unpacked: dict[str, set[Job]]) -> dict[Job, _Packed]:
        """Blocks pack within one column j of one data file, architecture and block size
        (the folder of their files): its train blocks i <= j, then its val and test rows, in
        that order, cut where the next block would take the pack's estimated work
        (symflow.costs, without the one start-up) past kernels.pack_minutes. A block estimated
        longer than that on its own stays a job of its own rule. Every m > j B asks for the
        same column, so a pack never changes when m grows."""
        from symflow.costs import block_work_seconds

        limit = 60.0 * float(self.config["kernels"]["pack_minutes"])
        order = {"train": 0, "val": 1, "test": 2}
        columns: dict[tuple[str, int], list[Block]] = {}
        for block in unpacked.get(Block.rule, ()):
            columns.setdefault((block.folder(), block.j), []).append(block)
        out: dict[Job, _Packed] = {}
        for blocks in columns.values():
            blocks.sort(key=lambda b: (order[b.split], b.i))
            chunk: list[Block] = []
            work = 0.0
            for block in [*blocks, None]:
                seconds = block_work_seconds(self.config, block) if block else 0.0
                if block is None or work + seconds > limit:
                    if len(chunk) > 1:
                        out.update(dict.fromkeys(chunk, BlockPack(tuple(chunk))))
                    chunk, work = [], 0.0
                if block is not None and seconds <= limit:
                    chunk.append(block)
                    work += seconds
        return out

    def packs(self, kind: type[_Packed] | None = None) -> list[_Packed]:
        """The packs of the default target (none unless sgd.pack > 1 or kernels.pack_minutes
        > 0), of one kind (Pack, Eta0Pack, BlockPack) or all, in a fixed order."""
        found = {p for p in self._pack_of.values() if kind is None or isinstance(p, kind)}
        return sorted(found, key=lambda p: (p.rule, p.digest))

    def producer(self, job: Job) -> Job:
        """The job that makes `job`'s outputs: its pack for a packed run, eta0 or block, else the job."""
        return self._pack_of.get(job, job)

    # -- what determines a job's results besides its inputs and path ---------------------------

    def settings(self, job: Job) -> dict:
        """The config values that change a job's results and are not in its path or inputs:
        its rule's params (the record's :meth:`Job.settings`)."""
        return job.settings(self)

    def speed(self, job: Job) -> dict[str, int | str]:
        """The knobs that change only how fast a job runs or what it leaves behind: its
        resources (the record's :meth:`Job.speed`)."""
        return job.speed(self)


# The knobs that change only how fast jobs run, where they run, or what they leave behind
# (section, key; a whole section where key is None). They reach jobs through resources and
# the environment, so changing one reruns nothing (tests/test_reruns.py).
SPEED_KNOBS = (
    ("data", "sample_dir"),  # a location: the source's identity is its digest, in the dataset name
    ("data", "official_dir"),
    ("data", "folder"),  # a location: the folder source's identity is its manifest's digest
    ("kernels", "threads"),
    ("kernels", "batch_size"),
    ("kernels", "pack_minutes"),  # packed blocks: the same files, and the same rerun records
    ("regression", "threads"),
    ("sgd", "threads"),
    ("sgd", "checkpoint_every"),
    ("sgd", "keep_checkpoints"),
    ("resources", None),
    ("imagenet", "root"),  # a location: the conversion records the source's MD5s or listing digest
    ("imagenet", "resources"),
    ("imagenet", "knobs"),
)


def without_speed_knobs(config: Mapping) -> dict:
    """The config less its speed and housekeeping knobs: what determines the results, with
    its keys sorted (the order of merged config files must not look like a change)."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in config.items()}
    for section, key in SPEED_KNOBS:
        if key is None:
            out.pop(section, None)
        elif isinstance(out.get(section), dict):
            out[section].pop(key, None)
    return _sorted(out)


def _sorted(value):
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


# the sgd settings of a run (besides its recipe's): everything of the sgd section that
# changes a trained network's numbers or its reported row
RUN_SETTINGS = ("batch_size", "momentum", "max_steps", "max_epochs", "selection", "eval_every", "success_train_accuracy")


def _package_file(name: str) -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent / name)


# -- what a config edit reruns -------------------------------------------------------------------


def _each(inputs: Mapping[str, Input | list[Input]]) -> list[Input]:
    """Every input of a job's inputs, named one by one or in lists."""
    return [x for value in inputs.values() for x in (value if isinstance(value, list) else [value])]


def _upstream(inputs: Mapping[str, Input | list[Input]]) -> list[Job]:
    """The jobs whose outputs a job's inputs name (not its source files)."""
    return [x.job for x in _each(inputs) if isinstance(x, Ref)]


def _flat_paths(inputs: Mapping[str, Input | list[Input]]) -> frozenset[str]:
    return frozenset(x.path for x in _each(inputs))


def reruns(before: Jobs, after: Jobs) -> dict[str, set[Job]]:
    """rule -> the jobs of `after`'s default target that a workflow complete under `before`
    runs again: those with an output that `before` did not make, with other settings (params)
    or another set of inputs than the job that made their outputs, and every job downstream
    of one of these. (Snakemake's rerun triggers: missing output, params, input, mtime.)"""
    made: dict[str, tuple[dict, frozenset[str]]] = {}
    for jobs in before.walk().values():
        for job in jobs:
            record = (before.settings(job), _flat_paths(before.inputs(job)))
            for path in job.outputs().values():
                made[path] = record

    memo: dict[Job, bool] = {}

    def planned(job: Job) -> bool:
        if job in memo:
            return memo[job]
        inputs = after.inputs(job)
        upstream = [after.producer(j) for j in _upstream(inputs)]
        mine = (after.settings(job), _flat_paths(inputs))
        result = any(made.get(p) != mine for p in job.outputs().values())
        result = any([planned(j) for j in upstream]) or result
        memo[job] = result
        return result

    out: dict[str, set[Job]] = {}
    for rule, jobs in after.walk().items():
        for job in jobs:
            if rule != "all" and planned(job):
                out.setdefault(rule, set()).add(job)
    return out
