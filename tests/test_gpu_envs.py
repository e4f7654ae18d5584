"""The GPU rules (symflow.plan.GPU_RULES) run in envs/symflow-cuda.yaml under `--sdm conda`
when the config asks for GPUs (resources.gpu > 0), every other rule in envs/symflow-cpu.yaml
(issue 18, item 3): shown by dry runs of the default target on the tiny config.

No conda is needed: Snakemake's dry run with --sdm conda asks `conda info`, `conda --version`
and `conda config` before it names the environments it would create, so a stub `conda` on
PATH answers those three (and nothing is created); the environment of each job comes from
the DAG Snakemake builds for that dry run (its API, as `snakemake --list-conda-envs` does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SAMPLE, TINY, copy_config, rule_of, snakemake_cmd
from symflow.plan import GPU_RULES

CPU_ENV, CUDA_ENV = "envs/symflow-cpu.yaml", "envs/symflow-cuda.yaml"
STUB_CONDA = """#!/bin/sh
case "$*" in
  "info --json") echo '{"conda_prefix": "/nonexistent/conda", "platform": "linux-64"}' ;;
  "--version") echo "conda 24.7.1" ;;
  "config --get channel_priority --json") echo '{"get": {"channel_priority": "strict"}}' ;;
  *) echo "stub conda: $*" >&2; exit 1 ;;
esac
"""
# Snakemake's own DAG of the dry run, job by job: what Workflow.conda_list_envs builds
PER_JOB = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, DeploymentMethod, DeploymentSettings, OutputSettings,
                                      Quietness, ResourceSettings)
with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    wf = api.workflow(resource_settings=ResourceSettings(cores=2), snakefile=Path(sys.argv[1]), workdir=Path.cwd(),
                      config_settings=ConfigSettings(configfiles=[Path(p) for p in sys.argv[2:]]),
                      deployment_settings=DeploymentSettings(deployment_method={DeploymentMethod.CONDA}))
    wf.dag()
    workflow = wf._workflow
    workflow._prepare_dag(forceall=False, ignore_incomplete=False, lock_warn_only=False)
    workflow._build_dag()
    envs = {}
    for job in workflow.dag.jobs:
        spec = job.conda_env_spec
        envs.setdefault(job.rule.name, set()).add(("envs/" + Path(str(spec.file)).name) if spec else "")
print(json.dumps({rule: sorted(e) for rule, e in envs.items()}))
"""


def _short(path: str) -> str:
    """An environment file as envs/NAME (the dry run names it by its path from the Snakefile)."""
    return "envs/" + Path(path).name


@pytest.fixture()
def workdir(tmp_path) -> Path:
    copy_config(tmp_path)
    (tmp_path / "data").mkdir()
    os.symlink(SAMPLE, tmp_path / "data" / "cifar-10-sample")
    return tmp_path


def _configs(workdir: Path, gpu: int) -> list[str]:
    # packs of 4: the tiny config then has jobs of train_sgd and of train_sgd_pack
    (workdir / "gpu.yaml").write_text(f"resources: {{gpu: {gpu}}}\nsgd: {{pack: 4}}\n")
    return [str(TINY), str(workdir / "gpu.yaml")]


def _env(workdir: Path) -> dict[str, str]:
    stub = workdir / "stub-bin"
    stub.mkdir(exist_ok=True)
    (stub / "conda").write_text(STUB_CONDA)
    (stub / "conda").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    return {**env, "PATH": f"{stub}{os.pathsep}{env['PATH']}", "PYTHONPATH": str(REPO)}


@pytest.mark.parametrize("gpu", [1, 0])
def test_a_conda_dry_run_names_the_cuda_environment_only_with_gpus(workdir, gpu):
    cmd = snakemake_cmd() + ["-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2", "--sdm", "conda"]
    cmd += ["--configfile", *_configs(workdir, gpu)]
    env = _env(workdir)
    dry = subprocess.run(cmd + ["-n"], cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    lines = (dry.stdout + dry.stderr).splitlines()
    created = {_short(line.split()[2]) for line in lines if line.endswith("will be created.")}
    listed = subprocess.run(cmd + ["--list-conda-envs"], cwd=workdir, env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    envs = {_short(line.split("\t")[0]) for line in listed.stdout.splitlines() if line.endswith("_")}  # hash_
    assert created == envs == ({CPU_ENV, CUDA_ENV} if gpu else {CPU_ENV})


@pytest.mark.parametrize("gpu", [1, 0])
def test_each_gpu_rule_runs_in_the_cuda_environment(workdir, gpu):
    proc = subprocess.run([sys.executable, "-c", PER_JOB, str(REPO / "Snakefile"), *_configs(workdir, gpu)],
                          cwd=workdir, env=_env(workdir), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    envs: dict[str, list[str]] = {}
    for name, used in json.loads(proc.stdout.strip().splitlines()[-1]).items():
        rule = rule_of(name)  # every pack's own rule as train_sgd_pack
        envs[rule] = sorted({*envs.get(rule, []), *used})
    # the tiny config's default target has jobs of each GPU rule, but compute_gram_block: its
    # blocks all go in packs (compute_gram_block_pack, which uses that rule, its env included)
    assert set(GPU_RULES) - {"compute_gram_block"} <= set(envs)
    for rule, used in envs.items():
        if rule == "all":
            continue
        want = CUDA_ENV if gpu and rule in GPU_RULES else CPU_ENV
        assert used == [want], (rule, used)
