# symflow: Xiao & Pennington (ICML 2022), "Synergy and Symmetry in Deep Learning",
# as a workflow of cached artifacts. `snakemake` run here reads this file; the workflow
# itself is workflow/Snakefile (the path a Snakemake module names).


include: "workflow/Snakefile"


# Snakemake keeps the default target of the main Snakefile only (an included file's
# `default_target: True` is undone when the include returns): name it here
workflow.default_target = "all"
