# Adapter: log, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to, timed  # noqa: E402
from symflow.data import prepare_dataset  # noqa: E402

log = log_to(snakemake.log[0])
wc = snakemake.wildcards
with timed(log, f"data stage {wc.dataset} {wc.transform} seed {wc.seed}"):
    prepare_dataset(
        snakemake.params.source_dir,
        snakemake.output.h5,
        **snakemake.params.data,
        transform=wc.transform,
        seed=int(wc.seed),
    )
