# Claims: every claim of symflow/claims.yaml evaluated on the gathered tables, a verdict
# each (holds, fails, untestable and why); shown first in the report. A failing claim
# never fails the workflow. Also the table of failed finite-network runs.


rule evaluate_claims:
    input:
        unpack(inputs_of(J.Claims)),
    output:
        csv=report(
            J.Claims.pattern("csv"),
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        J.Claims.log_pattern(),
    benchmark:
        J.Claims.benchmark_pattern()
    conda:
        conda_env(J.Claims)
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
            J.FailedRuns.pattern("csv"),
            caption="../report/failed_runs.rst",
            category="Failed runs",
        ),
        summary=report(
            J.FailedRuns.pattern("summary"),
            caption="../report/training.rst",
            category="Training",
        ),
    log:
        J.FailedRuns.log_pattern(),
    benchmark:
        J.FailedRuns.benchmark_pattern()
    conda:
        conda_env(J.FailedRuns)
    threads: 1
    resources:
        **sized(J.FailedRuns()),
    script:
        "../scripts/list_failed_runs.py"


# Every run's per-image results on the test set (and Fig. S1's per-image S-Dist): the
# claims compare cells image by image (paired intervals, symflow.evidence).
rule gather_predictions:
    input:
        unpack(inputs_of(J.GatherPredictions)),
    output:
        **J.GatherPredictions.patterns(),
    log:
        J.GatherPredictions.log_pattern(),
    benchmark:
        J.GatherPredictions.benchmark_pattern()
    conda:
        conda_env(J.GatherPredictions)
    threads: 1
    resources:
        **sized(J.GatherPredictions()),
    script:
        "../scripts/gather_predictions.py"


# Thm 4.1 at finite width: each network the theorem claims invariant, trained on tau D from
# W and on D from W tau (the proof's coupling), in float64; their test outputs must agree.
rule audit_coupled_training:
    input:
        unpack(inputs_of(J.CoupledAudit)),
    output:
        **J.CoupledAudit.patterns(),
    log:
        J.CoupledAudit.log_pattern(),
    benchmark:
        J.CoupledAudit.benchmark_pattern()
    conda:
        conda_env(J.CoupledAudit)
    threads: 1
    resources:
        **sized(J.CoupledAudit()),
    params:
        settings=JOBS.settings(J.CoupledAudit()),
    script:
        "../scripts/audit_coupled_training.py"
