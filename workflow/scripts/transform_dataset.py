# Adapter: log, load the config's plug-ins, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to, timed  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.sources import make_dataset  # noqa: E402

log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them
wc = snakemake.wildcards
with timed(log, f"data stage {wc.dataset} {wc.transform} seed {wc.data_seed}"):
    make_dataset(
        snakemake.resources.source_dir,  # a location: its content is named by the digest
        snakemake.output.h5,
        **snakemake.params.settings,  # source, digest, sizes, resolution, split seed, flip
        transform=wc.transform,
        seed=int(wc.data_seed),
    )
