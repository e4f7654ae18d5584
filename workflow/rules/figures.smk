# Figures: the per-run metrics rows are gathered into tidy tables; each figure rule reads
# only its table and writes a PDF and a PNG.


rule plot_figS2:
    input:
        unpack(inputs_of(J.FigS2)),
    output:
        pdf=J.FigS2.pattern("pdf"),
        png=report(
            J.FigS2.pattern("png"),
            caption="../report/figS2.rst",
            category="Figures",
        ),
    log:
        J.FigS2.log_pattern(),
    benchmark:
        J.FigS2.benchmark_pattern()
    conda:
        conda_env(J.FigS2)
    threads: 1
    resources:
        **sized(J.FigS2()),
    params:
        settings=settings_of(J.FigS2),
    script:
        "../scripts/plot_figS2.py"


rule aggregate_runs:
    input:
        unpack(inputs_of(J.Table)),
    output:
        csv=report(
            J.Table.pattern("csv"),
            caption="../report/tables.rst",
            category="Tables",
        ),
    log:
        J.Table.log_pattern(),
    benchmark:
        J.Table.benchmark_pattern()
    conda:
        conda_env(J.Table)
    threads: 1
    resources:
        **sized(J.Table),
    script:
        "../scripts/aggregate_runs.py"


# Fig. S1's table: the S-Dist rows of every ensemble along the path, one wide row each.
rule gather_s_dist:
    input:
        unpack(inputs_of(J.GatherSDist)),
    output:
        **J.GatherSDist.patterns(),
    log:
        J.GatherSDist.log_pattern(),
    benchmark:
        J.GatherSDist.benchmark_pattern()
    conda:
        conda_env(J.GatherSDist)
    threads: 1
    resources:
        **sized(J.GatherSDist()),
    script:
        "../scripts/gather_s_dist.py"


rule plot_figure:
    input:
        unpack(inputs_of(J.Figure)),
    output:
        pdf=J.Figure.pattern("pdf"),
        png=report(
            J.Figure.pattern("png"),
            caption="../report/figure.rst",
            category="Figures",
        ),
    log:
        J.Figure.log_pattern(),
    benchmark:
        J.Figure.benchmark_pattern()
    conda:
        conda_env(J.Figure)
    threads: 1
    resources:
        **sized(J.Figure),
    params:
        settings=settings_of(J.Figure),
    script:
        "../scripts/plot_figure.py"


rule write_report_tables:
    output:
        config=report(
            J.ReportTables.pattern("config"),
            caption="../report/config.rst",
            category="Configuration",
        ),
        paper=report(
            J.ReportTables.pattern("paper"),
            caption="../report/paper_values.rst",
            category="Paper values",
        ),
    log:
        J.ReportTables.log_pattern(),
    benchmark:
        J.ReportTables.benchmark_pattern()
    conda:
        conda_env(J.ReportTables)
    threads: 1
    resources:
        **sized(J.ReportTables()),
    params:
        settings=settings_of(J.ReportTables),
    script:
        "../scripts/write_report_tables.py"


# Training curves: every finite network's curve.csv in one table (a row per run and evaluation),
# and per figure its networks' train/validation/test accuracy against epochs.
rule gather_curves:
    input:
        unpack(inputs_of(J.Curves)),
    output:
        **J.Curves.patterns(),
    log:
        J.Curves.log_pattern(),
    benchmark:
        J.Curves.benchmark_pattern()
    conda:
        conda_env(J.Curves)
    threads: 1
    resources:
        **sized(J.Curves()),
    params:
        settings=settings_of(J.Curves),
    script:
        "../scripts/gather_curves.py"


rule plot_curves:
    input:
        unpack(inputs_of(J.CurvesFigure)),
    output:
        pdf=J.CurvesFigure.pattern("pdf"),
        png=report(
            J.CurvesFigure.pattern("png"),
            caption="../report/curves.rst",
            category="Training",
        ),
    log:
        J.CurvesFigure.log_pattern(),
    benchmark:
        J.CurvesFigure.benchmark_pattern()
    wildcard_constraints:
        figure="|".join(J.CURVE_FIGURES),
    conda:
        conda_env(J.CurvesFigure)
    threads: 1
    resources:
        **sized(J.CurvesFigure),
    script:
        "../scripts/plot_curves.py"


# The report's first page (workflow/report/workflow.rst, the workflow's `report:`) includes this
# file: what was run, what it decides.
rule write_report_summary:
    input:
        unpack(inputs_of(J.ReportSummary)),
    output:
        rst=report(
            J.ReportSummary.pattern("rst"),
            caption="../report/summary.rst",
            category="Configuration",
        ),
    log:
        J.ReportSummary.log_pattern(),
    benchmark:
        J.ReportSummary.benchmark_pattern()
    conda:
        conda_env(J.ReportSummary)
    threads: 1
    resources:
        **sized(J.ReportSummary()),
    params:
        settings=settings_of(J.ReportSummary),
    script:
        "../scripts/write_report_summary.py"
