# Adapter: log, load the config's plug-ins, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.runtime import configure_jax  # noqa: E402

configure_jax(snakemake.threads, resources=snakemake.resources)
from symflow.logs import log_to, timed  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.train import eta0_kwargs, run_estimate_eta0  # noqa: E402

log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them
wc = snakemake.wildcards
with timed(log, f"eta0 of {wc.arch}-w{wc.width}-{wc.init} on {wc.transform} m={wc.m} s{wc.seed} i{wc.member}"):
    run_estimate_eta0(
        snakemake.input.data, snakemake.output.json, **eta0_kwargs(dict(wc.items()), snakemake.params.settings), log=log
    )
