# Adapter: log, then one symflow call (every run's curve.csv into results/tables/curves.csv).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.figures.table import gather_curves  # noqa: E402
from symflow.jobs import CURVE_FIGURES  # noqa: E402
from symflow.logs import log_to  # noqa: E402

log = log_to(snakemake.log[0])
figures = {f: list(snakemake.input[f]) for f in CURVE_FIGURES}
n = gather_curves(figures, list(snakemake.input.metrics), snakemake.output.csv)
log.info("%d evaluations of %d runs -> %s", n, len(snakemake.input.metrics), snakemake.output.csv)
