# The data stage: CIFAR-10 -> split -> standardise -> downsample -> tau, one HDF5 per
# (dataset, transform, seed).


rule download_cifar10:
    output:
        archive=f"{DATA['official_dir']}/cifar-10-python.tar.gz",
    log:
        "logs/data/download_cifar10.log",
    benchmark:
        "benchmarks/data/download_cifar10.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(lambda wc: costs.DOWNLOAD),
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
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(lambda wc: costs.EXTRACT),
    script:
        "../scripts/extract_cifar10.py"


rule transform_dataset:
    input:
        sums=f"{SOURCE_DIR}/SHA256SUMS",
    output:
        h5="results/data/{dataset}/{transform}/s{seed}.h5",
    log:
        "logs/data/{dataset}/{transform}/s{seed}.log",
    benchmark:
        "benchmarks/data/{dataset}/{transform}/s{seed}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(data_cost),
    params:
        source_dir=lambda wc, input: os.path.dirname(input.sums),
        data=dataset_params,
    script:
        "../scripts/transform_dataset.py"
