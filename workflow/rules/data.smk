# The data stage: CIFAR-10 -> split -> standardise -> downsample -> tau, one HDF5 per
# (dataset, transform, seed). The dataset's name carries its source's identity (a digest of
# the folder's SHA256SUMS, or the official archive's MD5); where the folder lies is a
# resource (source_dir), so moving it reruns nothing.

DOWNLOAD = J.Download(config["data"]["official_dir"])
EXTRACT = J.Extract(config["data"]["official_dir"])


rule download_cifar10:
    output:
        archive=DOWNLOAD.output("archive"),
    log:
        "logs/data/download_cifar10.log",
    benchmark:
        "benchmarks/data/download_cifar10.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(DOWNLOAD),
    script:
        "../scripts/download_cifar10.py"


rule extract_cifar10:
    input:
        archive=DOWNLOAD.output("archive"),
    output:
        sums=EXTRACT.output("sums"),
    log:
        "logs/data/extract_cifar10.log",
    benchmark:
        "benchmarks/data/extract_cifar10.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **sized(EXTRACT),
    script:
        "../scripts/extract_cifar10.py"


rule transform_dataset:
    input:
        unpack(inputs_of(J.Data)),
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
        **sized(J.Data),
        source_dir=speed_of(J.Data, "source_dir"),
    params:
        settings=settings_of(J.Data),
    script:
        "../scripts/transform_dataset.py"
