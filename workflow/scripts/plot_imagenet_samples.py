# Adapter: log, then one symflow call (Fig. S7, S8 or S9: test images, rotated or clean).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.figures.figS7 import plot_samples  # noqa: E402

log = log_to(snakemake.log[0])
out = snakemake.output
figure = f"Fig. {snakemake.wildcards.figure[3:]}"
plot_samples(snakemake.input.shards, out.pdf, out.png, figure=figure, **snakemake.params.settings["options"])
log.info("wrote %s and %s", out.pdf, out.png)
