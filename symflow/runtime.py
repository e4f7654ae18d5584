"""Process set-up for JAX jobs: threads, precision, platform. Call before importing jax."""

from __future__ import annotations

import os
from typing import Any


def configure_jax(
    threads: int | None = None, x64: bool = False, platform: str | None = None, resources: Any = None
) -> None:
    """Limit XLA's CPU threads to the job's `threads` (Snakemake's threads) and set precision.

    `resources`: a workflow job's resources (anything with .get, e.g. snakemake.resources).
    Its `gpu` (0 where absent) is the GPUs the job was given; 0 pins JAX to the CPU
    (JAX_PLATFORMS=cpu unless set): on a machine with a GPU and JAX with CUDA, a job priced
    and scheduled as a CPU job then neither computes on the GPU nor takes its memory (JAX
    preallocates 75% of it in every process that touches it), so it cannot starve the GPU
    job beside it; and a CPU config gives CPU numbers wherever it runs. Its `jobs_per_gpu`
    (1 where absent) > 1, with a GPU: that many jobs share one GPU, so JAX takes at most
    0.95 / jobs_per_gpu of its memory (XLA_PYTHON_CLIENT_MEM_FRACTION, unless set). None
    (a library call) leaves the device to JAX.

    Must run before JAX is first imported in the process; later calls only set x64.
    """
    if resources is not None:
        gpus, jobs_per_gpu = int(resources.get("gpu", 0)), int(resources.get("jobs_per_gpu", 1))
        if gpus == 0 and platform is None:
            platform = "cpu"
        if gpus and jobs_per_gpu > 1:
            os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.95 / jobs_per_gpu:.3f}")
    if threads is not None and threads >= 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "intra_op_parallelism_threads" not in flags:
            extra = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
            extra += f"intra_op_parallelism_threads={threads}"
            os.environ["XLA_FLAGS"] = f"{flags} {extra}".strip()
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(threads))
    if platform:
        os.environ.setdefault("JAX_PLATFORMS", platform)
    if x64:
        os.environ["JAX_ENABLE_X64"] = "1"
        import jax

        jax.config.update("jax_enable_x64", True)
