# Claims: every claim of symflow/claims.yaml evaluated on the gathered tables, a verdict
# each (holds, fails, untestable and why); shown first in the report. A failing claim
# never fails the workflow. Also the table of failed finite-network runs.


rule evaluate_claims:
    input:
        **{name: f"results/tables/{name}.csv" for name in ["runs", *TABLES]},
        claims=str(REPO / "symflow" / "claims.yaml"),
        audit="results/symmetry_audit.csv",
        figS1="results/tables/figS1.csv",
    output:
        csv=report(
            "results/claims.csv",
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
        **sized(small_cost),
    script:
        "../scripts/evaluate_claims.py"


rule list_failed_runs:
    input:
        runs="results/tables/runs.csv",
    output:
        csv=report(
            "results/tables/failed_runs.csv",
            caption="../report/failed_runs.rst",
            category="Failed runs",
        ),
        summary=report(
            "results/tables/training.csv",
            caption="../report/training.rst",
            category="Failed runs",
        ),
    log:
        "logs/tables/failed_runs.log",
    benchmark:
        "benchmarks/tables/failed_runs.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(small_cost),
    script:
        "../scripts/list_failed_runs.py"
