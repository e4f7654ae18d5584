# Finite-width SGD (stage 4): eta0 of each run, training, ensembles and S-Dist (Fig. S1).
# The paths (the rules take them from the records symflow.jobs.Eta0, Run, Ensemble, SDist):
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
# live under checkpoints/sgd/ with the run's relative path (symflow.jobs.Run.checkpoint),
# are resumed from, and are removed when the run is done unless sgd.keep_checkpoints.


rule estimate_eta0:
    input:
        unpack(inputs_of(J.Eta0)),
    output:
        **J.Eta0.patterns(),
    log:
        J.Eta0.log_pattern(),
    benchmark:
        J.Eta0.benchmark_pattern()
    conda:
        conda_env(J.Eta0)
    threads: config["sgd"]["threads"]
    resources:
        **gpu(J.Eta0),
        **sized(J.Eta0),
    params:
        settings=settings_of(J.Eta0),
    script:
        "../scripts/estimate_eta0.py"


rule train_sgd:
    input:
        unpack(inputs_of(J.Run)),
    output:
        **J.Run.patterns(),
    log:
        J.Run.log_pattern(),
    benchmark:
        J.Run.benchmark_pattern()
    retries: resume_retries(J.Run)  # under resources.max_runtime: resumed from the checkpoint
    conda:
        conda_env(J.Run)
    threads: config["sgd"]["threads"]
    resources:
        **gpu(J.Run),
        **sized(J.Run),
        checkpoint_every=speed_of(J.Run, "checkpoint_every"),
        keep_checkpoint=speed_of(J.Run, "keep_checkpoint"),
    params:
        settings=settings_of(J.Run),
    script:
        "../scripts/train_sgd.py"


# Packed eta0 estimates (sgd.pack > 1): the eta0s of one network and data shape made in turn
# by one job (symflow.jobs.Eta0Pack): one start-up and one compilation for all, the same
# numbers as estimate_eta0, each its own file and log. One rule per pack, as below.
for _pack in JOBS.packs(J.Eta0Pack):

    rule:
        name:
            _pack.rule_name
        input:
            **JOBS.input_paths(_pack),
        output:
            **_pack.outputs(),
        log:
            **{f"eta0_{i}": path for i, path in enumerate(_pack.member_logs())},
            pack=_pack.log(),
        benchmark:
            _pack.benchmark()
        conda:
            conda_env(_pack)
        threads: config["sgd"]["threads"]
        resources:
            **gpu(_pack),
            **sized(_pack),
        params:
            settings=JOBS.settings(_pack),
            eta0s=[dataclasses.asdict(e) for e in _pack.eta0s],
        script:
            "../scripts/estimate_eta0_pack.py"


# Packed training (sgd.pack > 1): several runs of one network and data shape trained by one job
# (symflow.jobs.Pack, symflow.train.run_sgd_packed), each still writing its own files above
# and its own log. One rule per pack, named train_sgd_pack_<digest>: its outputs have no
# wildcards, so Snakemake prefers it to train_sgd for its runs' files.
for _pack in JOBS.packs(J.Pack):

    rule:
        name:
            _pack.rule_name
        input:
            **JOBS.input_paths(_pack),
        output:
            **_pack.outputs(),
        log:
            **{f"run_{i}": path for i, path in enumerate(_pack.member_logs())},
            pack=_pack.log(),
        benchmark:
            _pack.benchmark()
        retries: resume_retries(_pack)
        conda:
            conda_env(_pack)
        threads: config["sgd"]["threads"]
        resources:
            **gpu(_pack),
            **sized(_pack),
            **JOBS.speed(_pack),
        params:
            settings=JOBS.settings(_pack),
            runs=[dataclasses.asdict(r) for r in _pack.runs],
        script:
            "../scripts/train_sgd_pack.py"


rule average_ensemble:
    input:
        unpack(inputs_of(J.Ensemble)),
    output:
        **J.Ensemble.patterns(),
    log:
        J.Ensemble.log_pattern(),
    benchmark:
        J.Ensemble.benchmark_pattern()
    conda:
        conda_env(J.Ensemble)
    threads: 1
    resources:
        **sized(J.Ensemble),
    script:
        "../scripts/average_ensemble.py"


# Fig. S1: S-Dist of an ensemble of {arch}_n on so3_path-t data against {arch}_inf (NTK
# regression on the same data) and against an ensemble of GAP_n (same width, recipe, k)
# trained on the clean end of the path (t = 0).
rule compute_s_dist:
    input:
        unpack(inputs_of(J.SDist)),
    output:
        **J.SDist.patterns(),
    log:
        J.SDist.log_pattern(),
    benchmark:
        J.SDist.benchmark_pattern()
    conda:
        conda_env(J.SDist)
    threads: 1
    resources:
        **sized(J.SDist),
    params:
        settings=settings_of(J.SDist),
    script:
        "../scripts/compute_s_dist.py"
