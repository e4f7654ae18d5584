# Infinite-width kernels as cached B x B Gram blocks, the symmetry audit (Thm 4.1),
# and kernel regression on the assembled blocks. Paths and input functions: common.smk.


rule compute_gram_block:
    input:
        data=lambda wc: data_file(wc.transform, wc.seed, wc.dataset),
    output:
        h5="results/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/{split}/{i}-{j}.h5",
    log:
        "logs/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/{split}/{i}-{j}.log",
    benchmark:
        "benchmarks/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/{split}/{i}-{j}.tsv"
    group:
        block_group
    conda:
        CONDA_ENV
    threads: KCONF["threads"]
    resources:
        **GPU,
        **sized(block_cost),
    params:
        batch_size=KCONF["batch_size"],
    script:
        "../scripts/compute_gram_block.py"


rule audit_symmetry_pair:
    input:
        identity=lambda wc: data_file(IDENTITY, 0, wc.dataset),
        transformed=lambda wc: data_file(wc.transform, wc.seed, wc.dataset),
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
        **sized(audit_cost),
    params:
        audit_size=KCONF["audit_size"],
        tolerance=KCONF["audit_tolerance"],
    script:
        "../scripts/audit_symmetry_pair.py"


rule audit_kernel_equality:
    input:
        data=lambda wc: data_file(IDENTITY, 0, wc.dataset),
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
        **sized(equality_audit_cost),
    params:
        audit_size=KCONF["audit_size"],
        tolerance=KCONF["audit_tolerance"],
    script:
        "../scripts/audit_kernel_equality.py"


rule gather_symmetry_audit:
    input:
        rows=symmetry_audit_files(),
    output:
        csv="results/symmetry_audit.csv",
    log:
        "logs/audit/gather_symmetry_audit.log",
    benchmark:
        "benchmarks/audit/gather_symmetry_audit.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(small_cost),
    script:
        "../scripts/gather_symmetry_audit.py"


rule fit_kernel_regression:
    input:
        unpack(regression_inputs),
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
        **sized(regression_cost),
    params:
        ridge_grid=config["regression"]["ridge_grid"],
    script:
        "../scripts/fit_kernel_regression.py"
