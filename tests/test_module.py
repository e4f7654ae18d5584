"""The workflow deployed as a Snakemake module of another project (as snakedeploy writes it):
the project's Snakefile names this repository's Snakefile and passes its own config, and
`use rule * from symflow` takes every rule. The run uses a Python that has the stack but
not symflow (tests/conftest.py stack_venv), so symflow, its schema and the CIFAR-10 sample
are found only as the module finds them: from the module's folder (common.smk uses
workflow.current_basedir), not the project's (workflow.basedir), which holds only a Snakefile
and config/config.yaml.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from conftest import REPO, TINY, clean_env, pip_install, stack_venv, tracked_copy

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

PROJECT_SNAKEFILE = f"""\
configfile: "config/config.yaml"


module symflow:
    snakefile:
        "{REPO / 'workflow' / 'Snakefile'}"
    config:
        config


use rule * from symflow
"""
# a small target of the tiny config: the data stage (five transforms at 32 x 32) and Fig. S2,
# and the report tables (the paper's values, package data, and the resolved config)
TARGETS = ("results/figS2.pdf", "results/tables/paper_values.csv", "results/tables/config.yaml")


def test_the_workflow_runs_as_a_module_of_another_project(tmp_path):
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    (project / "Snakefile").write_text(PROJECT_SNAKEFILE)
    shutil.copytree(REPO / "config", project / "config", dirs_exist_ok=True)  # as snakedeploy copies it
    python = stack_venv(tmp_path / "venv")
    env = clean_env()
    bare = subprocess.run([python, "-c", "import symflow"], capture_output=True, text=True, env=env, cwd=project)
    assert bare.returncode != 0, "symflow must not be importable but through the module"

    start = time.monotonic()
    proc = subprocess.run(
        [python, "-m", "snakemake", "--cores", "2", "--configfile", str(TINY), "--", *TARGETS],
        cwd=project, capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    seconds = time.monotonic() - start
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    for target in TARGETS:
        assert (project / target).stat().st_size > 0, target
    # outputs, logs and benchmarks in the project; nothing written into the module's folder
    assert list((project / "results" / "data").glob("*/identity/s0.h5"))
    assert list((project / "logs").rglob("*.log")) and list((project / "benchmarks").rglob("*.tsv"))
    assert not (REPO / "results" / "tables" / "paper_values.csv").exists() or (
        (REPO / "results" / "tables" / "paper_values.csv").stat().st_mtime < start
    )
    # the module's rules took the module's config (tiny over the project's config/config.yaml)
    assert "n_train: 200" in (project / "results" / "tables" / "config.yaml").read_text()
    print(f"module run: {seconds:.0f} s")


def test_the_workflow_runs_as_a_module_from_a_git_repository(tmp_path):
    """A catalog deployment: the module is read from a git repository (Snakemake's
    gitfile, the local form of github(...)), so it has no folder of its own, and symflow is
    the package pip installed (as the conda envs' `${SYMFLOW_PACKAGE}` line installs it)."""
    repo = tracked_copy(tmp_path / "symflow-repo")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout
    python = stack_venv(tmp_path / "venv")
    env = clean_env()
    pip_install(python, repo, env)
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    (project / "Snakefile").write_text(
        PROJECT_SNAKEFILE.replace(
            f'"{REPO / "workflow" / "Snakefile"}"', f'gitfile("{repo}", "workflow/Snakefile", commit="{commit.strip()}")'
        )
    )
    shutil.copytree(REPO / "config", project / "config", dirs_exist_ok=True)
    shutil.rmtree(repo / "symflow")  # the rules must take symflow from the installed package
    # Snakemake 9.27.1's LocalGitFile.join fails on a script path when it checks whether a
    # script changed (the "code" rerun trigger; github(...)'s join formats the path and works):
    # the other triggers are kept
    triggers = ["--rerun-triggers", "mtime", "params", "input", "software-env"]
    proc = subprocess.run(
        [python, "-m", "snakemake", "--cores", "2", *triggers, "--configfile", str(TINY), "--", *TARGETS],
        cwd=project, capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    for target in TARGETS:
        assert (project / target).stat().st_size > 0, target
    assert "n_train: 200" in (project / "results" / "tables" / "config.yaml").read_text()
