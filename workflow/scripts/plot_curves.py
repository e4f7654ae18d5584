# Adapter: log, load the config's plug-ins (their groups' labels), then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.figures.training_curves import plot_training_curves  # noqa: E402
from symflow.logs import log_to  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402

log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))
plot_training_curves(snakemake.input.curves, snakemake.wildcards.figure, snakemake.output.pdf, snakemake.output.png,
                     data=list(snakemake.input.data))
log.info("wrote %s and %s", snakemake.output.pdf, snakemake.output.png)
