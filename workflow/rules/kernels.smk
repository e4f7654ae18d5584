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
        **J.Block.patterns(),
    log:
        J.Block.log_pattern(),
    benchmark:
        J.Block.benchmark_pattern()
    conda:
        conda_env(J.Block)
    threads: config["kernels"]["threads"]
    resources:
        **gpu(J.Block),
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
# run in turn), its runtime covers them in series (symflow.costs.block_pack_cost).
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
        workflow.resources(**gpu(_pack), **sized(_pack), **JOBS.speed(_pack)),
    ):
        _with = _directive(_with)
    workflow.userule(rules=["compute_gram_block"], name_modifier=_pack.rule_name)(_with)


rule audit_symmetry_pair:
    input:
        unpack(inputs_of(J.Audit)),
    output:
        **J.Audit.patterns(),
    log:
        J.Audit.log_pattern(),
    benchmark:
        J.Audit.benchmark_pattern()
    conda:
        conda_env(J.Audit)
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
        **J.EqualityAudit.patterns(),
    log:
        J.EqualityAudit.log_pattern(),
    benchmark:
        J.EqualityAudit.benchmark_pattern()
    wildcard_constraints:
        arch_a=_alternatives(ARCHITECTURES.names()),
        arch_b=_alternatives(ARCHITECTURES.names()),
    conda:
        conda_env(J.EqualityAudit)
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
            J.GatherAudit.pattern("csv"),
            caption="../report/symmetry_audit.rst",
            category="Symmetry audit",
        ),
    log:
        J.GatherAudit.log_pattern(),
    benchmark:
        J.GatherAudit.benchmark_pattern()
    conda:
        conda_env(J.GatherAudit)
    threads: 1
    resources:
        **sized(J.GatherAudit()),
    script:
        "../scripts/gather_symmetry_audit.py"


rule fit_kernel_regression:
    input:
        unpack(inputs_of(J.Regression)),
    output:
        **J.Regression.patterns(),
    log:
        J.Regression.log_pattern(),
    benchmark:
        J.Regression.benchmark_pattern()
    conda:
        conda_env(J.Regression)
    threads: config["regression"]["threads"]
    resources:
        **sized(J.Regression),
    params:
        settings=settings_of(J.Regression),
    script:
        "../scripts/fit_kernel_regression.py"
