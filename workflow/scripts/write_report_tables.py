# Adapter: log, then write the resolved config and the paper's stated values for the report.
import shutil
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
import yaml  # noqa: E402

from symflow import package_data  # noqa: E402
from symflow.h5io import atomic_path  # noqa: E402
from symflow.logs import log_to  # noqa: E402
from symflow.provenance import current  # noqa: E402

log = log_to(snakemake.log[0])
made_by = current()  # the symflow that wrote these tables (symflow.provenance)
header = (f"# The config of this run, every default filled in, speed knobs left out; written by symflow "
          f"{made_by['symflow_version']} (commit {made_by['symflow_commit'] or 'unknown: not a git checkout'})\n")
with atomic_path(snakemake.output.config, suffix=".yaml") as tmp:
    tmp.write_text(header + yaml.safe_dump(dict(snakemake.params.settings["config"]), sort_keys=False))
with atomic_path(snakemake.output.paper, suffix=".csv") as tmp:
    shutil.copyfile(package_data.path(package_data.PAPER_VALUES), tmp)  # the package's own copy
log.info("wrote %s and %s", snakemake.output.config, snakemake.output.paper)
