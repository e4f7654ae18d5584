"""The workflow deployed as the Snakemake workflow catalog deploys it: snakedeploy (pinned in
requirements/test.txt) makes a project from a clone of this repository in an empty folder,
offline (its local provider copies a path), and the project runs: its config/ is a copy of
the repository's (what a user edits), its profiles/ too, and its workflow/Snakefile names
symflow as a module. The run uses a Python with the stack but not symflow: the rules take
symflow from the clone, the module's folder.
"""

from __future__ import annotations

import csv
import filecmp
import subprocess
import sys

import pytest
import yaml

from conftest import REPORT, TINY, clean_env, stack_venv, tracked_copy

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-c", "init.defaultBranch=main"]
# a figure, its training curves, and the claims (which read every table of the default target)
TARGETS = ("results/fig4.png", "results/fig4_curves.png", "results/claims.csv")


def _clone(dest):
    """A git repository of this tree's tracked files (as a user's clone has them); its commit."""
    repo = tracked_copy(dest)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_snakedeploy_makes_a_project_that_runs_to_the_claims(tmp_path, monkeypatch, capsys):
    from symflow.cli import main
    from symflow.configuration import merge_config

    clone = tmp_path / "symflow"
    commit = _clone(clone)
    project = tmp_path / "project"
    project.mkdir()
    deploy = subprocess.run(
        [sys.executable, "-m", "snakedeploy.client", "deploy-workflow", str(clone), str(project), "--branch", "main"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

    # what snakedeploy made: the module's Snakefile, and copies of config/ and profiles/
    assert sorted(p.name for p in project.iterdir()) == ["LICENSE", "config", "profiles", "workflow"]
    for folder in ("config", "profiles"):
        same = filecmp.dircmp(clone / folder, project / folder)
        assert not (same.left_only or same.right_only or same.diff_files), folder
    assert {"config.yaml", "README.md"} <= {p.name for p in (project / "config").iterdir()}
    assert (project / "profiles" / "default" / "config.yaml").is_file()
    snakefile = (project / "workflow" / "Snakefile").read_text()
    assert 'configfile: "config/config.yaml"' in snakefile and "use rule * from symflow" in snakefile
    # snakedeploy 0.17.1's local provider names the module's Snakefile by its path in the source
    # ("workflow/Snakefile", which the project would resolve to its own workflow/workflow/Snakefile);
    # from GitHub it writes github("<owner>/symflow", path="workflow/Snakefile", tag=...), pointing
    # at the repository: point this one at the clone likewise
    assert '"workflow/Snakefile"' in snakefile
    (project / "workflow" / "Snakefile").write_text(
        snakefile.replace('"workflow/Snakefile"', f'"{clone / "workflow" / "Snakefile"}"')
    )

    # the user edits the project's config/config.yaml (here: to the tiny config); nothing else
    config = project / "config" / "config.yaml"
    edited = yaml.safe_load(config.read_text())
    for overlay in (TINY, REPORT):
        merge_config(edited, yaml.safe_load(overlay.read_text()))
    config.write_text(yaml.safe_dump(edited, sort_keys=False))
    monkeypatch.chdir(project)
    assert main(["check"]) == 0  # symflow check reads the project's config/config.yaml
    assert capsys.readouterr().out.startswith("ok: config/config.yaml (dataset cifar10-sample.0e454ec3-r8-n200.")

    python = stack_venv(tmp_path / "venv")
    proc = subprocess.run(
        [python, "-m", "snakemake", "--cores", "2", "--", *TARGETS],
        cwd=project, capture_output=True, text=True, env=clean_env(), timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "workflow specific profile profiles/default" in proc.stderr  # the copied profile applies
    for target in TARGETS:
        assert (project / target).stat().st_size > 0, target
    claims = csv_rows(project / "results" / "claims.csv")
    assert claims and "holds" in {r["verdict"] for r in claims}  # Thm 4.1's audit holds on any config
    # the edit took: every run is on the tiny config's data (200 training images)
    runs = csv_rows(project / "results" / "tables" / "runs.csv")
    assert {r["dataset"] for r in runs} == {"cifar10-sample.0e454ec3-r8-n200.40.80-split0"}
    # every row names the symflow that computed it: the clone's commit
    for table in ("results/claims.csv", "results/tables/runs.csv", "results/tables/curves.csv"):
        rows = csv_rows(project / table)
        assert rows and {r["symflow_commit"] for r in rows} == {commit}, table
    # results, logs and benchmarks in the project, none in the clone
    assert (project / "logs").is_dir() and (project / "benchmarks").is_dir()
    assert not any((clone / name).exists() for name in ("results", "logs", "benchmarks", ".snakemake"))


def csv_rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
