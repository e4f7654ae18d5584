# Figures: the per-run metrics rows are gathered into tidy tables; each figure rule reads
# only its table and writes a PDF and a PNG.


rule plot_figS2:
    input:
        data=[
            data_file(t, config["figS2"]["seed"], FIGS2_DATASET)
            for t in figS2_transforms()
        ],
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
        **sized(small_cost),
    params:
        transforms=figS2_transforms(),
        images=config["figS2"]["images"],
    script:
        "../scripts/plot_figS2.py"


rule aggregate_runs:
    input:
        rows=table_inputs,
    output:
        csv="results/tables/{table}.csv",
    log:
        "logs/tables/{table}.log",
    benchmark:
        "benchmarks/tables/{table}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(small_cost),
    script:
        "../scripts/aggregate_runs.py"


# Fig. S1's table: the S-Dist rows of every ensemble along the path, one wide row each.
rule gather_s_dist:
    input:
        rows=lambda wc: [f for f in figS1_runs() if f.endswith("sdist.csv")],
    output:
        csv="results/tables/figS1.csv",
    log:
        "logs/tables/figS1.log",
    benchmark:
        "benchmarks/tables/figS1.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(small_cost),
    script:
        "../scripts/gather_s_dist.py"


rule plot_figure:
    input:
        table="results/tables/{figure}.csv",
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
        **sized(small_cost),
    params:
        options=figure_options,
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
        **sized(small_cost),
    params:
        config=config,
    script:
        "../scripts/write_report_tables.py"
