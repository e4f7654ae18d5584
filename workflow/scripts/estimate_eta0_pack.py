# Adapter: log (the pack's log, and each eta0's own), load the config's plug-ins, then one
# symflow call per eta0 of the pack, in turn.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.runtime import configure_jax  # noqa: E402

configure_jax(snakemake.threads, resources=snakemake.resources)
from symflow.logs import file_logger, log_to, timed  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.train import eta0_kwargs, run_estimate_eta0  # noqa: E402

log = log_to(snakemake.log.pack)
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them
# params: each eta0's record fields (eta0s) and settings (settings.eta0s), in the order of the
# pack's numbered inputs, outputs and logs
eta0s = list(zip(snakemake.params.eta0s, snakemake.params.settings["eta0s"]))
outputs = [snakemake.output[f"json_{i}"] for i in range(len(eta0s))]
with timed(log, f"eta0 pack of {len(eta0s)}: " + ", ".join(outputs)):
    for i, (identity, settings) in enumerate(eta0s):
        own = file_logger(snakemake.log[f"eta0_{i}"], f"symflow.eta0pack.{i}")
        with timed(own, f"eta0 of {outputs[i]} (pack member {i + 1} of {len(eta0s)})"):
            run_estimate_eta0(snakemake.input[f"data_{i}"], outputs[i], **eta0_kwargs(identity, settings), log=own)
