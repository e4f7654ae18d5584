# Adapter: log, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.figures.table import gather  # noqa: E402
from symflow.logs import log_to  # noqa: E402

log = log_to(snakemake.log[0])
n = gather(snakemake.input.rows, snakemake.output.csv)
log.info("gathered %d runs from %d files into %s", n, len(snakemake.input.rows), snakemake.output.csv)
