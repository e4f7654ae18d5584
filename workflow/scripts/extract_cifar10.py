# Adapter: log, then one symflow call (checks the archive's MD5, writes SHA256SUMS).
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.data import extract_archive  # noqa: E402

log = log_to(snakemake.log[0])
folder = extract_archive(snakemake.input.archive, Path(snakemake.output.sums).parent.parent)
log.info("extracted and verified %s", folder)
