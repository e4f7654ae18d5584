# Infinite-width kernels as cached B x B Gram blocks, the symmetry audit (Thm 4.1),
# and kernel regression on the assembled blocks. Paths and input functions: common.smk.


rule compute_gram_block:
    input:
        data=lambda wc: data_file(wc.transform, wc.seed, wc.dataset),
    output:
        h5="results/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/{split}/{i}-{j}.h5",
    params:
        batch_size=KCONF["batch_size"],
    log:
        "logs/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/{split}/{i}-{j}.log",
    benchmark:
        "benchmarks/kernels/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/B{bs}/{split}/{i}-{j}.tsv"
    resources:
        mem_mb=block_mem_mb,
        runtime=block_runtime,
        gpu=config["resources"]["gpu"],
    threads: 1
    conda:
        CONDA_ENV
    script:
        "../scripts/compute_gram_block.py"


rule audit_symmetry_pair:
    input:
        identity=lambda wc: data_file("identity", 0, wc.dataset),
        transformed=lambda wc: data_file(wc.transform, wc.seed, wc.dataset),
    output:
        csv="results/audit/{dataset}/{arch}/{hp}/{transform}/s{seed}.csv",
    params:
        audit_size=KCONF["audit_size"],
        tolerance=KCONF["audit_tolerance"],
    log:
        "logs/audit/{dataset}/{arch}/{hp}/{transform}/s{seed}.log",
    benchmark:
        "benchmarks/audit/{dataset}/{arch}/{hp}/{transform}/s{seed}.tsv"
    resources:
        mem_mb=3000,
        runtime=30,
    threads: 1
    conda:
        CONDA_ENV
    script:
        "../scripts/audit_symmetry_pair.py"


rule audit_kernel_equality:
    input:
        data=lambda wc: data_file("identity", 0, wc.dataset),
    output:
        csv="results/audit/{dataset}/{arch_a}={arch_b}/{hp}/identity/s0.csv",
    params:
        audit_size=KCONF["audit_size"],
        tolerance=KCONF["audit_tolerance"],
    wildcard_constraints:
        arch_a=_alternatives(ARCHITECTURES.names()),
        arch_b=_alternatives(ARCHITECTURES.names()),
    log:
        "logs/audit/{dataset}/{arch_a}={arch_b}/{hp}/identity/s0.log",
    benchmark:
        "benchmarks/audit/{dataset}/{arch_a}={arch_b}/{hp}/identity/s0.tsv"
    resources:
        mem_mb=3000,
        runtime=30,
    threads: 1
    conda:
        CONDA_ENV
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
    resources:
        mem_mb=500,
        runtime=5,
    threads: 1
    conda:
        CONDA_ENV
    script:
        "../scripts/gather_symmetry_audit.py"


rule fit_kernel_regression:
    input:
        unpack(regression_inputs),
    output:
        h5="results/regression/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/m{m}/{kernel}.h5",
        csv="results/regression/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/m{m}/{kernel}.csv",
    params:
        ridge_grid=config["regression"]["ridge_grid"],
    log:
        "logs/regression/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/m{m}/{kernel}.log",
    benchmark:
        "benchmarks/regression/{dataset}/{arch}/{hp}/{kspec}/{transform}/s{seed}/m{m}/{kernel}.tsv"
    resources:
        mem_mb=regression_mem_mb,
        runtime=30,
    threads: 2
    conda:
        CONDA_ENV
    script:
        "../scripts/fit_kernel_regression.py"
