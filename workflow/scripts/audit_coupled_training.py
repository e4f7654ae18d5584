# Adapter: log, load the config's plug-ins, then one symflow call (float64: JAX's x64 mode).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.runtime import configure_jax  # noqa: E402

configure_jax(snakemake.threads, x64=True, resources=snakemake.resources)
log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))

from symflow.coupled import run_coupled_audit  # noqa: E402

run_coupled_audit(snakemake.input.identity, snakemake.input.eta0, snakemake.output.csv,
                  settings=snakemake.params.settings, log=log)
