"""symflow.runtime.configure_jax: a job that the workflow gives no GPU computes on the CPU.

On a machine with a GPU and JAX with CUDA, JAX would otherwise put every process on the GPU
and preallocate 75% of its memory in each: a CPU job (a float64 audit, a regression) beside
the GPU job would take the device the plan gave to that job. The workflow passes each job's
`gpu` resource (0 where the rule asks for none, or resources.gpu is 0)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env_after(env_platform: str | None, var: str = "JAX_PLATFORMS", **kwargs) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "XLA_PYTHON_CLIENT_MEM_FRACTION")}
    if env_platform is not None:
        env["JAX_PLATFORMS"] = env_platform
    code = (
        "import os; from symflow.runtime import configure_jax; "
        f"configure_jax(1, **{kwargs!r}); print(os.environ.get({var!r}, '<unset>'))"
    )
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(REPO)}, capture_output=True,
                         text=True, check=True)  # fmt: skip
    return out.stdout.strip()


def _platform_after(env_platform: str | None, **kwargs) -> str:
    return _env_after(env_platform, **kwargs)


@pytest.mark.parametrize(
    "env_platform,kwargs,want",
    [
        (None, {"resources": {"gpu": 0}}, "cpu"),  # a CPU job: pinned to the CPU
        (None, {"resources": {"gpu": 1}}, "<unset>"),  # a GPU job: JAX's choice (the GPU where there is one)
        (None, {}, "<unset>"),  # a library call: JAX's choice
        ("cuda", {"resources": {"gpu": 0}}, "cuda"),  # the user's own setting stands
        (None, {"resources": {"gpu": 0}, "platform": "tpu"}, "tpu"),  # an explicit platform stands
        (None, {"resources": {"gpu": 0, "mem_mb": 100}}, "cpu"),  # a job's resources, as the scripts pass them
        (None, {"resources": {"mem_mb": 100}}, "cpu"),  # no gpu resource: a CPU rule
        (None, {"resources": {"gpu": 1}}, "<unset>"),
    ],
)
def test_a_job_without_gpus_is_pinned_to_the_cpu(env_platform, kwargs, want):
    assert _platform_after(env_platform, **kwargs) == want


@pytest.mark.parametrize(
    "kwargs,want",
    [
        ({"resources": {"gpu": 1, "jobs_per_gpu": 4}}, "0.237"),  # four jobs share the GPU's memory
        ({"resources": {"gpu": 1}}, "<unset>"),  # one job a GPU: JAX's own preallocation
        ({"resources": {"gpu": 0, "jobs_per_gpu": 4}}, "<unset>"),  # a CPU job takes no GPU memory
    ],
)
def test_jobs_sharing_a_gpu_split_its_memory(kwargs, want):
    assert _env_after(None, var="XLA_PYTHON_CLIENT_MEM_FRACTION", **kwargs) == want


def test_every_jax_job_script_passes_its_gpu_resource():
    """Each workflow script that sets JAX up passes the job's `gpu` resource: the rules of
    symflow.plan.GPU_RULES (and train_imagenet) get the GPU where the config gives one, the
    audits and regressions stay on the CPU."""
    calls = {}
    for path in sorted((REPO / "workflow" / "scripts").glob("*.py")):
        found = re.findall(r"configure_jax\(([^\n]*)\)", path.read_text())
        if found:
            calls[path.name] = found
    assert {"compute_gram_block.py", "estimate_eta0.py", "train_sgd.py", "train_sgd_pack.py", "train_imagenet.py",
            "audit_symmetry_pair.py", "audit_kernel_equality.py", "fit_kernel_regression.py"} <= set(calls)  # fmt: skip
    for name, found in calls.items():
        assert all("resources=snakemake.resources" in args for args in found), (name, found)


def test_provenance_names_the_jax_device_where_jax_computed():
    code = (
        "from symflow.h5io import package_versions; a = package_versions(); import jax; "
        "b = package_versions(); print('jax_device' in a, b['jax_device'])"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "cpu"]
