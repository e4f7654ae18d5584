# ImageNet (Sec. 6.2, Fig. 5, App. B.2, Figs. S3, S4, S7-S9; docs/imagenet.md): included by the
# Snakefile only where the config has an `imagenet` section (config/imagenet.yaml). Each rule
# mirrors a record of symflow.jobs (ConvertImageNet, ImageNetRun, GatherImageNet,
# ImageNetFigure, ImageNetSamples), which also gives its output patterns, inputs, params and resources.
#
#   results/imagenet/shards/                  the user's ILSVRC2012 as ArrayRecord shards (+ manifest.json)
#   results/imagenet/runs/{tag}/{model}/{transform}/m{m}/s{seed}/   run.h5  metrics.csv  point.csv
#   results/tables/imagenet_{points,history,slopes}.csv
#   results/fig5.pdf  results/figS3.pdf  results/figS4.pdf  results/figS{7,8,9}.pdf
#
# {tag} is a digest of the recipe and subset settings (symflow.imagenet.jobs.settings_tag), so a
# changed recipe writes new runs; speed knobs (workers, threads, checkpoint cadence) are
# resources. Checkpoints live under checkpoints/imagenet/ (not outputs: Snakemake deletes the
# outputs of a job it reruns) and are removed when the run's files are written.
from symflow.imagenet.models import MODELS as IMAGENET_MODELS

IMAGENET_GPUS = config["imagenet"]["resources"]["gpus_per_job"]
# a training job holds whole nodes: every GPU of one (data parallel), and nothing else beside it
IMAGENET_NODE = (
    {"gpu": IMAGENET_GPUS, "slurm_extra": "'--exclusive'"} if IMAGENET_GPUS > 0 else {}
)


rule convert_imagenet:
    output:
        shards=directory(J.ConvertImageNet.pattern("shards")),
    log:
        J.ConvertImageNet.log_pattern(),
    benchmark:
        J.ConvertImageNet.benchmark_pattern()
    conda:
        conda_env(J.ConvertImageNet)
    threads: 8
    resources:
        **sized(J.ConvertImageNet()),
        root=speed_of(J.ConvertImageNet, "root"),
    params:
        settings=settings_of(J.ConvertImageNet),
    script:
        "../scripts/convert_imagenet.py"


rule train_imagenet:
    input:
        unpack(inputs_of(J.ImageNetRun)),
    output:
        **J.ImageNetRun.patterns(),
    log:
        J.ImageNetRun.log_pattern(),
    benchmark:
        J.ImageNetRun.benchmark_pattern()
    wildcard_constraints:
        tag=JOBS.imagenet_tag,
        model=_alternatives(IMAGENET_MODELS.names()),
    retries: resume_retries(J.ImageNetRun)  # under resources.max_runtime: resumed from the checkpoint
    conda:
        conda_env(J.ImageNetRun)
    threads: config["imagenet"]["knobs"]["workers"] + 1  # the input workers and the training process
    resources:
        **IMAGENET_NODE,
        **sized(J.ImageNetRun),
        workers=speed_of(J.ImageNetRun, "workers"),
        input_threads=speed_of(J.ImageNetRun, "input_threads"),
        log_every=speed_of(J.ImageNetRun, "log_every"),
        checkpoint_every=speed_of(J.ImageNetRun, "checkpoint_every"),
    params:
        settings=settings_of(J.ImageNetRun),
        checkpoint=lambda wc: J.ImageNetRun.from_wildcards(wc).checkpoint(),
    script:
        "../scripts/train_imagenet.py"


rule gather_imagenet:
    input:
        unpack(inputs_of(J.GatherImageNet)),
    output:
        points=J.GatherImageNet.pattern("points"),
        history=J.GatherImageNet.pattern("history"),
        slopes=report(
            J.GatherImageNet.pattern("slopes"),
            caption="../report/imagenet_slopes.rst",
            category="ImageNet",
        ),
    log:
        J.GatherImageNet.log_pattern(),
    benchmark:
        J.GatherImageNet.benchmark_pattern()
    conda:
        conda_env(J.GatherImageNet)
    threads: 1
    resources:
        **sized(J.GatherImageNet()),
    script:
        "../scripts/gather_imagenet.py"


rule plot_imagenet_figure:
    input:
        unpack(inputs_of(J.ImageNetFigure)),
    output:
        pdf=J.ImageNetFigure.pattern("pdf"),
        png=report(
            J.ImageNetFigure.pattern("png"),
            caption="../report/imagenet.rst",
            category="ImageNet",
        ),
    log:
        J.ImageNetFigure.log_pattern(),
    benchmark:
        J.ImageNetFigure.benchmark_pattern()
    wildcard_constraints:
        figure="|".join(J.IMAGENET_FIGURES),
    conda:
        conda_env(J.ImageNetFigure)
    threads: 1
    resources:
        **sized(J.ImageNetFigure),
    params:
        settings=settings_of(J.ImageNetFigure),
    script:
        "../scripts/plot_imagenet.py"


rule plot_imagenet_samples:
    input:
        unpack(inputs_of(J.ImageNetSamples)),
    output:
        pdf=J.ImageNetSamples.pattern("pdf"),
        png=report(
            J.ImageNetSamples.pattern("png"),
            caption="../report/imagenet.rst",
            category="ImageNet",
        ),
    log:
        J.ImageNetSamples.log_pattern(),
    benchmark:
        J.ImageNetSamples.benchmark_pattern()
    wildcard_constraints:
        figure="|".join(J.IMAGENET_SAMPLES),
    conda:
        conda_env(J.ImageNetSamples)
    threads: 1
    resources:
        **sized(J.ImageNetSamples),
    params:
        settings=settings_of(J.ImageNetSamples),
    script:
        "../scripts/plot_imagenet_samples.py"
