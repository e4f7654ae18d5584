# Adapter: log, then one symflow call (one ImageNet training run, resumed from its checkpoint).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.runtime import configure_jax  # noqa: E402

configure_jax(snakemake.threads, resources=snakemake.resources)
from symflow.logs import log_to, timed  # noqa: E402
from symflow.jobs import ImageNetRun  # noqa: E402
from symflow.imagenet.train import Recipe, run_imagenet  # noqa: E402

log = log_to(snakemake.log[0])
res, settings = snakemake.resources, snakemake.params.settings
run = ImageNetRun.from_wildcards(snakemake.wildcards)  # the job's record: its identity and checkpoint
with timed(log, f"ImageNet {run.folder()}"):
    run_imagenet(
        snakemake.input.shards,
        run_path=snakemake.output.run,
        metrics_path=snakemake.output.metrics,
        point_path=snakemake.output.point,
        checkpoint_dir=run.checkpoint(),
        model=run.model,
        transform=run.transform,
        seed=run.seed,
        m=run.m,
        subset_seed=settings["subset_seed"],
        recipe=Recipe(**settings["recipe"]),
        dataset=f"imagenet-r{settings['recipe']['image_size']}",
        log=log,
        workers=res.workers,
        threads=res.input_threads,
        log_every=res.log_every,
        checkpoint_every=res.checkpoint_every,
    )
