# Adapter: log, then one symflow call (the failed runs of runs.csv, for the report).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.claims import failed_runs  # noqa: E402
from symflow.figures.table import write_training_summary  # noqa: E402
from symflow.logs import log_to  # noqa: E402

log = log_to(snakemake.log[0])
n = failed_runs(snakemake.input.runs, snakemake.output.csv)
log.info("%d failed runs -> %s", n, snakemake.output.csv)
summary = write_training_summary(snakemake.input.runs, snakemake.output.summary)
log.info("training summary (%d rows) -> %s", len(summary), snakemake.output.summary)
