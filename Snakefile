# symflow: Xiao & Pennington (ICML 2022), "Synergy and Symmetry in Deep Learning",
# as a workflow of cached artifacts. This file only wires; see workflow/rules/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/kernels.smk"
include: "workflow/rules/sgd.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"


# ImageNet (Fig. 5, S3, S4, S7-S9) only where the config asks for it (config/imagenet.yaml)
if config["imagenet"]:

    include: "workflow/rules/imagenet.smk"


rule all:
    default_target: True
    input:
        all_targets(),
