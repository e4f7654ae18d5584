# The data stage: CIFAR-10 -> split -> standardise -> downsample -> tau, one HDF5 per
# (dataset, transform, seed).


rule download_cifar10:
    output:
        archive=f"{DATA['official_dir']}/cifar-10-python.tar.gz",
    log:
        "logs/data/download_cifar10.log",
    benchmark:
        "benchmarks/data/download_cifar10.tsv"
    resources:
        mem_mb=1000,
        runtime=60,
    threads: 1
    conda:
        CONDA_ENV
    script:
        "../scripts/download_cifar10.py"


rule extract_cifar10:
    input:
        archive=rules.download_cifar10.output.archive,
    output:
        sums=f"{DATA['official_dir']}/cifar-10-batches-py/SHA256SUMS",
    log:
        "logs/data/extract_cifar10.log",
    benchmark:
        "benchmarks/data/extract_cifar10.tsv"
    resources:
        mem_mb=2000,
        runtime=20,
    threads: 1
    conda:
        CONDA_ENV
    script:
        "../scripts/extract_cifar10.py"


rule transform_dataset:
    input:
        sums=f"{SOURCE_DIR}/SHA256SUMS",
    output:
        h5="results/data/{dataset}/{transform}/s{seed}.h5",
    params:
        source_dir=SOURCE_DIR,
        data=dataset_params,
    log:
        "logs/data/{dataset}/{transform}/s{seed}.log",
    benchmark:
        "benchmarks/data/{dataset}/{transform}/s{seed}.tsv"
    resources:
        mem_mb=lambda wc: 2000 + (6000 if DATA["source"] == "official" else 0),
        runtime=30,
    threads: 1
    conda:
        CONDA_ENV
    script:
        "../scripts/transform_dataset.py"
