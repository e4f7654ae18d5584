# Adapter: log, then one symflow call (the user's ILSVRC2012 -> ArrayRecord shards).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to, timed  # noqa: E402
from symflow.imagenet.data import convert  # noqa: E402

log = log_to(snakemake.log[0])
settings, root = snakemake.params.settings, snakemake.resources.root
with timed(log, f"converting the ILSVRC2012 in {root}"):
    convert(root, snakemake.output.shards, md5s=settings["md5"], shard_size=settings["shard_size"],
            train_images=settings["train_images"], workers=snakemake.threads, log=log)
