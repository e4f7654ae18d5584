# Claims: every claim of symflow/claims.yaml evaluated on the gathered tables, a verdict
# each (holds, fails, untestable and why); shown first in the report. A failing claim
# never fails the workflow. Also the table of failed finite-network runs.


rule evaluate_claims:
    input:
        unpack(inputs_of(J.Claims)),
    output:
        csv=report(
            J.Claims().output("csv"),
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        "logs/claims/claims.log",
    benchmark:
        "benchmarks/claims/claims.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(J.Claims()),
    script:
        "../scripts/evaluate_claims.py"


rule list_failed_runs:
    input:
        unpack(inputs_of(J.FailedRuns)),
    output:
        csv=report(
            J.FailedRuns().output("csv"),
            caption="../report/failed_runs.rst",
            category="Failed runs",
        ),
        summary=report(
            J.FailedRuns().output("summary"),
            caption="../report/training.rst",
            category="Training",
        ),
    log:
        "logs/tables/failed_runs.log",
    benchmark:
        "benchmarks/tables/failed_runs.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(J.FailedRuns()),
    script:
        "../scripts/list_failed_runs.py"
