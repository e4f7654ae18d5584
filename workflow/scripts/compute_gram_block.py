# Adapter: log, load the config's plug-ins, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.runtime import configure_jax  # noqa: E402

wc = snakemake.wildcards
backend, dtype = wc.kspec.split("-")
configure_jax(snakemake.threads, x64=dtype == "float64", resources=snakemake.resources)
log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them

from symflow.architectures import ModelHP  # noqa: E402
from symflow.kernels import compute_block  # noqa: E402

compute_block(
    snakemake.input.data,
    snakemake.output.h5,
    arch=wc.arch,
    hp=ModelHP.from_tag(wc.hp),
    split=wc.split,
    i=int(wc.i),
    j=int(wc.j),
    block_size=int(wc.bs),
    backend=backend,
    dtype=dtype,
    batch_rows=snakemake.resources.batch_rows,  # a speed knob: a resource, never a param
    log=log,
)
