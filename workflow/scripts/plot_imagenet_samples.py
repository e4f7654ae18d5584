# Adapter: log, then one symflow call (issue 19 draft: workflow/rules/imagenet.smk is not included yet).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.figures.figS7 import plot_samples  # noqa: E402

log = log_to(snakemake.log[0])
p = snakemake.params
figure = f"Fig. {snakemake.wildcards.figure[3:]}"
plot_samples(snakemake.input.shards, snakemake.output.pdf, snakemake.output.png, transform=p.transform, seed=p.seed,
             figure=figure, images=p.images, image_size=p.image_size)
log.info("wrote %s and %s", snakemake.output.pdf, snakemake.output.png)
