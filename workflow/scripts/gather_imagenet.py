# Adapter: log, then symflow calls (the runs' points and histories, and the learning-curve slopes).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.imagenet.curves import write_slope_table  # noqa: E402
from symflow.imagenet.results import gather_history, gather_points  # noqa: E402

log = log_to(snakemake.log[0])
out = snakemake.output
log.info("%d points", gather_points(snakemake.input.points, out.points))
log.info("%d evaluations", gather_history(snakemake.input.runs, out.history))
log.info("%d slopes", write_slope_table(out.points, out.slopes))
