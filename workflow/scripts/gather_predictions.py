# Adapter: log, then one symflow call (every run's per-image results -> predictions.h5).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.predictions import gather, labels_by_dataset  # noqa: E402

log = log_to(snakemake.log[0])
inp = snakemake.input
sdist = [(m, {"inf": i, "gap": g}) for m, i, g in zip(inp.sdist_mean, inp.sdist_inf, inp.sdist_gap)]
gather(inp.outputs, labels_by_dataset(inp.labels), sdist, snakemake.output.h5, log=log)
