# Figures: each rule reads gathered results and writes a PDF and a PNG.


rule plot_figS2:
    input:
        data=[
            data_file(t, config["figS2"]["seed"], FIGS2_DATASET)
            for t in figS2_transforms()
        ],
    output:
        pdf="results/figS2.pdf",
        png="results/figS2.png",
    log:
        "logs/figures/figS2.log",
    benchmark:
        "benchmarks/figures/figS2.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        transforms=figS2_transforms(),
        images=config["figS2"]["images"],
    script:
        "../scripts/plot_figS2.py"
