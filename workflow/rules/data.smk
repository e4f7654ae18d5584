# The data stage: CIFAR-10 -> split -> standardise -> downsample -> tau, one HDF5 per
# (dataset, transform, data_seed). The dataset's name carries its source's identity (a digest of
# the folder's SHA256SUMS, or the official archive's MD5); where the folder lies is a
# resource (source_dir), so moving it reruns nothing.

DOWNLOAD = J.Download(config["data"]["official_dir"])
EXTRACT = J.Extract(config["data"]["official_dir"])


rule download_cifar10:
    output:
        **DOWNLOAD.outputs(),
    log:
        DOWNLOAD.log(),
    benchmark:
        DOWNLOAD.benchmark()
    conda:
        conda_env(DOWNLOAD)
    threads: 1
    resources:
        **sized(DOWNLOAD),
    script:
        "../scripts/download_cifar10.py"


rule extract_cifar10:
    input:
        **JOBS.input_paths(EXTRACT),
    output:
        **EXTRACT.outputs(),
    log:
        EXTRACT.log(),
    benchmark:
        EXTRACT.benchmark()
    conda:
        conda_env(EXTRACT)
    threads: 1
    resources:
        **sized(EXTRACT),
    script:
        "../scripts/extract_cifar10.py"


rule transform_dataset:
    input:
        unpack(inputs_of(J.Data)),
    output:
        **J.Data.patterns(),
    log:
        J.Data.log_pattern(),
    benchmark:
        J.Data.benchmark_pattern()
    conda:
        conda_env(J.Data)
    threads: 1
    resources:
        **sized(J.Data),
        source_dir=speed_of(J.Data, "source_dir"),
    params:
        settings=settings_of(J.Data),
    script:
        "../scripts/transform_dataset.py"
