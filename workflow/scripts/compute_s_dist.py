# Adapter: log, load the config's plug-ins, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.ensemble import run_s_dist  # noqa: E402

log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them
wc = snakemake.wildcards
run_s_dist(
    snakemake.input.ensemble,
    {
        f"{wc.arch}_inf": (snakemake.input.inf, wc.transform),
        f"GAP_{wc.width}": (snakemake.input.gap, snakemake.params.settings["gap_transform"]),
    },
    out_path=snakemake.output.csv,
    log=log,
)
