# Adapter: log, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.ensemble import sdist_table  # noqa: E402
from symflow.logs import log_to  # noqa: E402

log = log_to(snakemake.log[0])
n = sdist_table(snakemake.input.rows, snakemake.output.csv)
log.info("gathered %d ensembles from %d S-Dist files into %s", n, len(snakemake.input.rows), snakemake.output.csv)
