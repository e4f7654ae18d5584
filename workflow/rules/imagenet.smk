# ImageNet (issue 19, Sec. 6.2, Fig. 5, App. B.2, Figs. S3, S4, S7-S9). DRAFT: not included by
# the Snakefile yet. It needs, to be wired: the `imagenet:` keys of config/imagenet.yaml in
# the schema (with `imagenet: null` = off by default), these runs as job records beside the
# CIFAR ones (symflow.imagenet.jobs already enumerates them, with their paths and cost), the
# figures in `rule all` only when the config has `imagenet`, and the plan's GPU-hours.
#
#   results/imagenet/shards/                  the user's ILSVRC2012 as ArrayRecord shards (+ manifest.json)
#   results/imagenet/runs/{tag}/{model}/{transform}/m{m}/s{seed}/   run.h5  metrics.csv  point.csv
#   results/tables/imagenet_points.csv  results/tables/imagenet_history.csv
#   results/fig5.pdf  results/figS3.pdf  results/figS4.pdf  results/figS{7,8,9}.pdf
#
# {tag} is a digest of the recipe and subset settings (symflow.imagenet.jobs.settings_tag), so a
# changed recipe writes new runs; speed knobs (workers, threads, checkpoint cadence) are resources.
# Checkpoints live under checkpoints/imagenet/ (not outputs: Snakemake deletes the outputs of a
# job it reruns) and are removed when the run's files are written.

from symflow.imagenet import jobs as IJ
from symflow.imagenet.cost import job_cost
from symflow.imagenet.models import MODELS as IMAGENET_MODELS

IMAGENET = config.get("imagenet") or {}
IMAGENET_TAG = IJ.settings_tag(IMAGENET)
IMAGENET_RUNS = IJ.runs(IMAGENET)
IMAGENET_KNOBS = IMAGENET.get("knobs", {})
IMAGENET_GPUS = int(IMAGENET.get("resources", {}).get("gpus_per_job", 8))
IMAGENET_RUN = "{model}/{transform}/m{m}/s{seed}"


def imagenet_runtime(wildcards):
    """Minutes for sbatch -t: the plan's wall hours of the run, doubled (checkpoints resume the rest)."""
    recipe = IJ.recipe_settings(IMAGENET)["recipe"]
    cost = job_cost(
        wildcards.model,
        int(wildcards.m),
        epochs=recipe["epochs"],
        gpus=IMAGENET_GPUS,
        eval_every_epochs=recipe["eval_every_epochs"],
        per_gpu_rate=IMAGENET.get("resources", {}).get("per_gpu_rate"),
    )
    return int(120 * cost.wall_hours) + 30


rule convert_imagenet:
    output:
        shards=directory("results/imagenet/shards"),
    log:
        "logs/imagenet/convert.log",
    benchmark:
        "benchmarks/imagenet/convert.tsv"
    conda:
        CONDA_ENV
    threads: 8
    resources:
        mem_mb=8000,
        runtime=12 * 60,
    params:
        root=IMAGENET.get("root"),
        md5=IMAGENET.get("md5"),
        shard_size=IMAGENET.get("shard_size", 10000),
        train_images=IJ.train_images(IMAGENET),
    script:
        "../scripts/convert_imagenet.py"


rule train_imagenet:
    input:
        shards=rules.convert_imagenet.output.shards,
    output:
        run=f"results/imagenet/runs/{{tag}}/{IMAGENET_RUN}/run.h5",
        metrics=f"results/imagenet/runs/{{tag}}/{IMAGENET_RUN}/metrics.csv",
        point=f"results/imagenet/runs/{{tag}}/{IMAGENET_RUN}/point.csv",
    log:
        f"logs/imagenet/{{tag}}/{IMAGENET_RUN}.log",
    benchmark:
        f"benchmarks/imagenet/{{tag}}/{IMAGENET_RUN}.tsv"
    wildcard_constraints:
        tag=IMAGENET_TAG,
        model="|".join(IMAGENET_MODELS.names()),
        m=r"\d+",
        seed=r"\d+",
    conda:
        CONDA_ENV
    threads: int(IMAGENET_KNOBS.get("workers", 16)) + 2
    resources:
        gpu=IMAGENET_GPUS,
        mem_mb=64000,
        runtime=imagenet_runtime,
        slurm_extra="'--exclusive'",  # whole nodes: one run uses every GPU of its node
        workers=int(IMAGENET_KNOBS.get("workers", 16)),
        input_threads=int(IMAGENET_KNOBS.get("threads", 8)),
        log_every=int(IMAGENET_KNOBS.get("log_every", 100)),
        checkpoint_every=int(IMAGENET_KNOBS.get("checkpoint_every", 1000)),
    params:
        settings=IJ.recipe_settings(IMAGENET),
        checkpoint=lambda wc: IJ.ImageNetRun(
            wc.model, wc.transform, int(wc.m), int(wc.seed)
        ).checkpoint(wc.tag),
    script:
        "../scripts/train_imagenet.py"


rule gather_imagenet:
    input:
        points=[f"{r.folder(IMAGENET_TAG)}/point.csv" for r in IMAGENET_RUNS],
        runs=[f"{r.folder(IMAGENET_TAG)}/run.h5" for r in IMAGENET_RUNS],
    output:
        points="results/tables/imagenet_points.csv",
        history="results/tables/imagenet_history.csv",
    log:
        "logs/tables/imagenet.log",
    benchmark:
        "benchmarks/tables/imagenet.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/gather_imagenet.py"


rule plot_imagenet_figure:
    input:
        points=rules.gather_imagenet.output.points,
        history=rules.gather_imagenet.output.history,
    output:
        pdf="results/{figure}.pdf",
        png="results/{figure}.png",
    log:
        "logs/figures/{figure}.log",
    benchmark:
        "benchmarks/figures/{figure}.tsv"
    wildcard_constraints:
        figure="fig5|figS3|figS4",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=lambda wc: {
            "fig5": IMAGENET.get("fig5", {}),
            "figS3": IMAGENET.get("figS3", {}),
            "figS4": IMAGENET.get("figS4", {}),
        }[wc.figure],
    script:
        "../scripts/plot_imagenet.py"


rule plot_imagenet_samples:
    input:
        shards=rules.convert_imagenet.output.shards,
    output:
        pdf="results/{figure}.pdf",
        png="results/{figure}.png",
    log:
        "logs/figures/{figure}.log",
    benchmark:
        "benchmarks/figures/{figure}.tsv"
    wildcard_constraints:
        figure="figS7|figS8|figS9",
    conda:
        CONDA_ENV
    threads: 4
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        # S7, S8: O(3)^d with the first and second rotated seed; S9: clean
        transform=lambda wc: (
            "identity"
            if wc.figure == "figS9"
            else IMAGENET["samples"]["rotated"]["transform"]
        ),
        seed=lambda wc: (
            0
            if wc.figure == "figS9"
            else IMAGENET["samples"]["rotated"]["seeds"][int(wc.figure[-1]) - 7]
        ),
        images=IMAGENET.get("samples", {}).get("images", 16),
        image_size=IMAGENET.get("image_size", 224),
    script:
        "../scripts/plot_imagenet_samples.py"
