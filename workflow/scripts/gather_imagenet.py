# Adapter: log, then one symflow call (issue 19 draft: workflow/rules/imagenet.smk is not included yet).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.imagenet.results import gather_history, gather_points  # noqa: E402

log = log_to(snakemake.log[0])
log.info("%d points", gather_points(snakemake.input.points, snakemake.output.points))
log.info("%d evaluations", gather_history(snakemake.input.runs, snakemake.output.history))
