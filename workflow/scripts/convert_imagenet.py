# Adapter: log, then one symflow call (issue 19 draft: workflow/rules/imagenet.smk is not included yet).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to, timed  # noqa: E402
from symflow.imagenet.data import convert  # noqa: E402

log = log_to(snakemake.log[0])
with timed(log, f"converting the ILSVRC2012 in {snakemake.params.root}"):
    convert(snakemake.params.root, snakemake.output.shards, md5s=snakemake.params.md5,
            shard_size=snakemake.params.shard_size, train_images=snakemake.params.train_images,
            workers=snakemake.threads, log=log)
