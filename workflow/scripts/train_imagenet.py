# Adapter: log, then one symflow call (issue 19 draft: workflow/rules/imagenet.smk is not included yet).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.imagenet.train import Recipe, run_imagenet  # noqa: E402

log = log_to(snakemake.log[0])
wc, res, settings = snakemake.wildcards, snakemake.resources, snakemake.params.settings
run_imagenet(
    snakemake.input.shards,
    run_path=snakemake.output.run,
    metrics_path=snakemake.output.metrics,
    point_path=snakemake.output.point,
    checkpoint_dir=snakemake.params.checkpoint,
    model=wc.model,
    transform=wc.transform,
    seed=int(wc.seed),
    m=int(wc.m),
    subset_seed=settings["subset_seed"],
    recipe=Recipe(**settings["recipe"]),
    log=log,
    workers=res.workers,
    threads=res.input_threads,
    log_every=res.log_every,
    checkpoint_every=res.checkpoint_every,
)
