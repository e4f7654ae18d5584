# Adapter: log, then one symflow call (the report's first page: what was run, what it decides).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.report import write_summary  # noqa: E402

log = log_to(snakemake.log[0])
settings, i = snakemake.params.settings, snakemake.input
text = write_summary(snakemake.output.rst, settings["config"], settings["dataset"], claims_csv=i.claims,
                     runs_csv=i.runs, audit_csv=i.audit, training_csv=i.training)
log.info("%s:\n%s", snakemake.output.rst, text)
