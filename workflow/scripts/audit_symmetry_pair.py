# Adapter: log, load the config's plug-ins, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.runtime import configure_jax  # noqa: E402

configure_jax(snakemake.threads, x64=True, resources=snakemake.resources)
log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them

from symflow.architectures import ModelHP  # noqa: E402
from symflow.audit import audit_pair  # noqa: E402

wc = snakemake.wildcards
audit_pair(
    snakemake.input.identity,
    snakemake.input.transformed,
    snakemake.output.csv,
    dataset=wc.dataset,
    arch=wc.arch,
    hp=ModelHP.from_tag(wc.hp),
    transform=wc.transform,
    seed=int(wc.seed),
    audit_size=snakemake.params.settings["audit_size"],
    tolerance=snakemake.params.settings["tolerance"],
    log=log,
)
