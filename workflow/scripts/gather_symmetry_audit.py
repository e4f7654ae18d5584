# Adapter: log, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.audit import gather  # noqa: E402

log = log_to(snakemake.log[0])
gather(snakemake.input.rows, snakemake.output.csv, log=log)
