# Adapter: log, then one symflow call (every claim of symflow/claims.yaml on the gathered tables).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.claims import write_claims  # noqa: E402
from symflow.logs import log_to  # noqa: E402

log = log_to(snakemake.log[0])
tables = {name: path for name, path in snakemake.input.items() if name != "claims"}
frame = write_claims(snakemake.output.csv, tables, claims_file=snakemake.input.claims)
log.info("%d claims -> %s: %s", len(frame), snakemake.output.csv, frame["verdict"].value_counts().to_dict())
for _, row in frame.iterrows():
    log.info("%s %s %s", row["verdict"], row["claim"], row["reason"] or row["measured"])
