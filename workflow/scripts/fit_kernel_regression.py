# Adapter: log, load the config's plug-ins, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.runtime import configure_jax  # noqa: E402

configure_jax(snakemake.threads, resources=snakemake.resources)  # numpy's eigh: BLAS threads
log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them

from symflow.regression import fit_kernel_regression  # noqa: E402

wc = snakemake.wildcards
fit_kernel_regression(
    list(snakemake.input.blocks),
    snakemake.input.data,
    snakemake.output.h5,
    snakemake.output.csv,
    kernel=wc.kernel,
    m=int(wc.m),
    ridge_grid=snakemake.params.settings["ridge_grid"],
    dataset=wc.dataset,
    architecture=wc.arch,
    transform=wc.transform,
    seed=int(wc.seed),
    audit_csv=snakemake.input.get("audit"),
    log=log,
)
