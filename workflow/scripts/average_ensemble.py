# Adapter: log, load the config's plug-ins, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.ensemble import run_average_ensemble  # noqa: E402

log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them
run_average_ensemble(
    snakemake.input.predictions,
    snakemake.input.metrics,
    mean_path=snakemake.output.mean,
    metrics_path=snakemake.output.metrics,
    log=log,
)
