# Adapter: log, then one symflow call (fails with a message saying where to put the archive).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.data import download_archive  # noqa: E402

log = log_to(snakemake.log[0])
log.info("downloading the official CIFAR-10 archive to %s", snakemake.output.archive)
download_archive(snakemake.output.archive)
