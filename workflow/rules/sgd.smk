# Finite-width SGD (stage 4): eta0 of each run, training, ensembles and S-Dist (Fig. S1).
#
#   results/sgd/{dataset}/{arch}-w{width}-{init}/{hp}/{transform}/eta0/m{m}/s{seed}/i{member}.json
#   results/sgd/{dataset}/{arch}-w{width}-{init}/{hp}/{transform}/{recipe}/m{m}/s{seed}/i{member}/
#       metrics.csv  predictions.h5  curve.csv
#   results/ensembles/{dataset}/{arch}-w{width}-{init}/{hp}/{transform}/{recipe}/m{m}/s{seed}/k{k}/
#       mean.h5  metrics.csv  sdist.csv
#
# eta0 (2 n / lambda_max of the finite-width NTK at init: the run's own, or a Monte Carlo
# mean over inits, config sgd.lr_estimate) is its own job, shared by both recipes.
# Checkpoints are not outputs (Snakemake deletes the outputs of a job it reruns): they
# live under checkpoints/sgd/ with the run's relative path, are resumed from, and are
# removed when the run is done. Paths, constraints and resources: common_sgd.smk.


# -- rules --------------------------------------------------------------------------------------


rule estimate_eta0:
    input:
        data=lambda wc: data_file(wc.transform, wc.seed, wc.dataset),
    output:
        json=f"results/sgd/{SGD_RUN}/eta0/m{{m}}/s{{seed}}/i{{member}}.json",
    log:
        f"logs/sgd/{SGD_RUN}/eta0/m{{m}}/s{{seed}}/i{{member}}.log",
    benchmark:
        f"benchmarks/sgd/{SGD_RUN}/eta0/m{{m}}/s{{seed}}/i{{member}}.tsv"
    wildcard_constraints:
        **SGD_WC,
    conda:
        CONDA_ENV
    threads: SGD["threads"]
    resources:
        **GPU,
        **sized(eta0_cost),
    params:
        model=config["model"],
        size=SGD["lr_estimate_size"],
        mode=SGD["lr_estimate"],
        samples=SGD["lr_estimate_samples"],
    script:
        "../scripts/estimate_eta0.py"


rule train_sgd:
    input:
        data=lambda wc: data_file(wc.transform, wc.seed, wc.dataset),
        eta0=rules.estimate_eta0.output.json,
    output:
        metrics=f"results/sgd/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/i{{member}}/metrics.csv",
        predictions=f"results/sgd/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/i{{member}}/predictions.h5",
        curve=f"results/sgd/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/i{{member}}/curve.csv",
    log:
        f"logs/sgd/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/i{{member}}.log",
    benchmark:
        f"benchmarks/sgd/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/i{{member}}.tsv"
    wildcard_constraints:
        **SGD_WC,
    conda:
        CONDA_ENV
    threads: SGD["threads"]
    resources:
        **GPU,
        **sized(sgd_cost),
    params:
        model=config["model"],
        sgd=SGD,
        checkpoint=sgd_checkpoint,
    script:
        "../scripts/train_sgd.py"


rule average_ensemble:
    input:
        predictions=lambda wc: ensemble_members(wc, "predictions.h5"),
        metrics=lambda wc: ensemble_members(wc, "metrics.csv"),
    output:
        mean=f"results/ensembles/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/k{{k}}/mean.h5",
        metrics=f"results/ensembles/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/k{{k}}/metrics.csv",
    log:
        f"logs/ensembles/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/k{{k}}/mean.log",
    benchmark:
        f"benchmarks/ensembles/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/k{{k}}/mean.tsv"
    wildcard_constraints:
        **SGD_WC,
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(small_cost),
    script:
        "../scripts/average_ensemble.py"


# Fig. S1: S-Dist of an ensemble of {arch}_n on so3_path-t data against {arch}_inf (NTK
# regression on the same data) and against an ensemble of GAP_n (same width, recipe, k)
# trained on the clean end of the path (t = 0, FIGS1_GAP_REFERENCE).
rule compute_s_dist:
    input:
        ensemble=rules.average_ensemble.output.mean,
        inf=lambda wc: regression_file(wc.arch, wc.transform, wc.seed, wc.m, "ntk"),
        gap=lambda wc: f"{ensemble_dir('GAP', wc.width, FIGS1_GAP_REFERENCE, wc.recipe, wc.m, wc.seed, wc.k, wc.init)}/mean.h5",
    output:
        csv=f"results/ensembles/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/k{{k}}/sdist.csv",
    log:
        f"logs/ensembles/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/k{{k}}/sdist.log",
    benchmark:
        f"benchmarks/ensembles/{SGD_RUN}/{{recipe}}/m{{m}}/s{{seed}}/k{{k}}/sdist.tsv"
    wildcard_constraints:
        **SGD_WC,
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(small_cost),
    params:
        gap_transform=FIGS1_GAP_REFERENCE,
    script:
        "../scripts/compute_s_dist.py"


# -- targets ---------------------------------------------------------------------------------


rule train_fig2_networks:
    input:
        sgd_fig2_runs(),
