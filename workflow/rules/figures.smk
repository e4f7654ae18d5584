# Figures: the per-run metrics rows are gathered into tidy tables; each figure rule reads
# only its table and writes a PDF and a PNG.


rule plot_figS2:
    input:
        unpack(inputs_of(J.FigS2)),
    output:
        pdf="results/figS2.pdf",
        png=report(
            "results/figS2.png",
            caption="../report/figS2.rst",
            category="Figures",
        ),
    log:
        "logs/figures/figS2.log",
    benchmark:
        "benchmarks/figures/figS2.tsv"
    conda:
        CONDA_ENV
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
            "results/tables/{table}.csv",
            caption="../report/tables.rst",
            category="Tables",
        ),
    log:
        "logs/tables/{table}.log",
    benchmark:
        "benchmarks/tables/{table}.tsv"
    conda:
        CONDA_ENV
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
        csv=J.GatherSDist().output("csv"),
    log:
        "logs/tables/figS1.log",
    benchmark:
        "benchmarks/tables/figS1.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(J.GatherSDist()),
    script:
        "../scripts/gather_s_dist.py"


rule plot_figure:
    input:
        unpack(inputs_of(J.Figure)),
    output:
        pdf="results/{figure}.pdf",
        png=report(
            "results/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
        ),
    log:
        "logs/figures/{figure}.log",
    benchmark:
        "benchmarks/figures/{figure}.tsv"
    conda:
        CONDA_ENV
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
            "results/tables/config.yaml",
            caption="../report/config.rst",
            category="Configuration",
        ),
        paper=report(
            "results/tables/paper_values.csv",
            caption="../report/paper_values.rst",
            category="Paper values",
        ),
    log:
        "logs/tables/report_tables.log",
    benchmark:
        "benchmarks/tables/report_tables.tsv"
    conda:
        CONDA_ENV
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
        csv=J.Curves().output("csv"),
    log:
        "logs/tables/curves.log",
    benchmark:
        J.Curves().benchmark()
    conda:
        CONDA_ENV
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
        pdf="results/{figure}_curves.pdf",
        png=report(
            "results/{figure}_curves.png",
            caption="../report/curves.rst",
            category="Training",
        ),
    log:
        "logs/figures/{figure}_curves.log",
    benchmark:
        "benchmarks/figures/{figure}_curves.tsv"
    wildcard_constraints:
        figure="|".join(J.CURVE_FIGURES),
    conda:
        CONDA_ENV
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
            J.ReportSummary().output("rst"),
            caption="../report/summary.rst",
            category="Configuration",
        ),
    log:
        "logs/report/summary.log",
    benchmark:
        J.ReportSummary().benchmark()
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(J.ReportSummary()),
    params:
        settings=settings_of(J.ReportSummary),
    script:
        "../scripts/write_report_summary.py"
