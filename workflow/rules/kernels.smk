# Infinite-width kernels as cached B x B Gram blocks (one job each, or packed: several in one
# job, kernels.pack_minutes), the symmetry audit (Thm 4.1),
# and kernel regression on the assembled blocks. A regression on a transform the
# architecture is invariant to (the registry's claim) reads the blocks of the
# untransformed data when kernels.reuse_invariant is on, and then also the symmetry audit
# of that pair, which must agree (symflow.jobs.Jobs.inputs).


rule compute_gram_block:
    input:
        unpack(inputs_of(J.Block)),
    output:
        h5="results/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/{split}/{i}-{j}.h5",
    log:
        "logs/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/{split}/{i}-{j}.log",
    benchmark:
        "benchmarks/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/{split}/{i}-{j}.tsv"
    conda:
        GPU_CONDA_ENV
    threads: config["kernels"]["threads"]
    resources:
        **GPU,
        **sized(J.Block),
        batch_rows=speed_of(J.Block, "batch_rows"),
    script:
        "../scripts/compute_gram_block.py"


# Packed blocks (kernels.pack_minutes > 0): several blocks of one Gram-matrix column computed
# one after another by one job and one process (symflow.jobs.BlockPack,
# symflow.kernels.compute_blocks), each still its own file above, byte for byte, and its own
# log. Each pack is `use rule compute_gram_block as compute_gram_block_pack_<digest> with:`
# its blocks' files, logs and resources: the statement takes a literal name and packs are
# named when the config is read, so the loop calls what the statement compiles to
# (workflow.userule, as `snakemake --print-compilation` shows). Inheriting the rule keeps its
# script line, which Snakemake records as the rule's code; with no params and the blocks'
# one data file as input, a block's file carries the same rerun record whether a pack or
# its own job made it: packing reruns nothing. Its outputs have no wildcards, so Snakemake
# prefers it to compute_gram_block for its blocks' files. Its threads are one block's (they
# run in turn), its runtime covers them in series (symflow.plan.block_pack_cost).
for _pack in JOBS.packs(J.BlockPack):
    _with = workflow.run(None)
    for _directive in (
        workflow.input(**JOBS.input_paths(_pack)),
        workflow.output(**_pack.outputs()),
        workflow.log(
            **{f"block_{i}": path for i, path in enumerate(_pack.member_logs())},
            pack=_pack.log(),
        ),
        workflow.benchmark(_pack.benchmark()),
        workflow.resources(**GPU, **sized(_pack), **JOBS.speed(_pack)),
    ):
        _with = _directive(_with)
    workflow.userule(rules=["compute_gram_block"], name_modifier=_pack.rule_name)(_with)


rule audit_symmetry_pair:
    input:
        unpack(inputs_of(J.Audit)),
    output:
        csv="results/audit/{dataset}/{arch}/{hp}/{transform}/s{seed}.csv",
    log:
        "logs/audit/{dataset}/{arch}/{hp}/{transform}/s{seed}.log",
    benchmark:
        "benchmarks/audit/{dataset}/{arch}/{hp}/{transform}/s{seed}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(J.Audit),
    params:
        settings=settings_of(J.Audit),
    script:
        "../scripts/audit_symmetry_pair.py"


rule audit_kernel_equality:
    input:
        unpack(inputs_of(J.EqualityAudit)),
    output:
        csv="results/audit/{dataset}/{arch_a}={arch_b}/{hp}/identity/s0.csv",
    log:
        "logs/audit/{dataset}/{arch_a}={arch_b}/{hp}/identity/s0.log",
    benchmark:
        "benchmarks/audit/{dataset}/{arch_a}={arch_b}/{hp}/identity/s0.tsv"
    wildcard_constraints:
        arch_a=_alternatives(ARCHITECTURES.names()),
        arch_b=_alternatives(ARCHITECTURES.names()),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(J.EqualityAudit),
    params:
        settings=settings_of(J.EqualityAudit),
    script:
        "../scripts/audit_kernel_equality.py"


rule gather_symmetry_audit:
    input:
        unpack(inputs_of(J.GatherAudit)),
    output:
        csv=report(
            J.GatherAudit().output("csv"),
            caption="../report/symmetry_audit.rst",
            category="Symmetry audit",
        ),
    log:
        "logs/audit/gather_symmetry_audit.log",
    benchmark:
        "benchmarks/audit/gather_symmetry_audit.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(J.GatherAudit()),
    script:
        "../scripts/gather_symmetry_audit.py"


rule fit_kernel_regression:
    input:
        unpack(inputs_of(J.Regression)),
    output:
        h5="results/regression/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/m{m}/{kernel}.h5",
        csv="results/regression/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/m{m}/{kernel}.csv",
    log:
        "logs/regression/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/m{m}/{kernel}.log",
    benchmark:
        "benchmarks/regression/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/m{m}/{kernel}.tsv"
    conda:
        CONDA_ENV
    threads: config["regression"]["threads"]
    resources:
        **sized(J.Regression),
    params:
        settings=settings_of(J.Regression),
    script:
        "../scripts/fit_kernel_regression.py"
