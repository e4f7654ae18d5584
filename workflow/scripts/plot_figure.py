# Adapter: log, load the config's plug-ins, then one symflow call (symflow.figures.<figure>.plot_<figure>).
import importlib
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402

log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins (their groups' labels)
fig = snakemake.wildcards.figure
plot = getattr(importlib.import_module(f"symflow.figures.{fig}"), f"plot_{fig}")
plot(snakemake.input.table, snakemake.output.pdf, snakemake.output.png, **snakemake.params.settings["options"])
log.info("wrote %s and %s", snakemake.output.pdf, snakemake.output.png)
