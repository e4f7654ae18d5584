"""Shared fixtures: the repo root, the shipped sample, a tiny workflow runner."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "symflow" / "cifar-10-sample"  # package data
TINY = REPO / "tests" / "configs" / "tiny.yaml"
CONFIG = REPO / "config" / "config.yaml"  # the embedded default (the Snakefile's configfile)
BIN = Path(sys.executable).parent


def snakemake_cmd() -> list[str]:
    exe = BIN / "snakemake"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


def make_workdir(dest: Path) -> Path:
    """A copy of the workflow (not results) in `dest`, so tests never touch the repo's results/.
    The copy's symflow links to the shipped sample rather than copying its 15 MB; so does
    data/cifar-10-sample (a folder for tests that copy or name the sample by path)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config", "workflow", "symflow", "envs", "tests"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", SAMPLE.name))
        else:
            shutil.copy2(src, dest / name)
    os.symlink(SAMPLE, dest / "symflow" / SAMPLE.name)
    (dest / "data").mkdir(exist_ok=True)
    os.symlink(SAMPLE, dest / "data" / "cifar-10-sample")
    return dest


def copy_config(folder: Path) -> Path:
    """The embedded default config at `folder`/config/config.yaml, where the Snakefile reads it
    (as in a checkout, and in a project snakedeploy made); returns `folder`."""
    (folder / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy2(CONFIG, folder / "config" / "config.yaml")
    return folder


def stack_venv(dest: Path) -> Path:
    """A fresh venv at `dest` that sees this interpreter's packages (the pinned stack, snakemake)
    through a .pth file but not symflow (the editable install's own .pth there is not run):
    offline, in about a second. Returns its python."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    python = dest / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "_stack.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def tracked_copy(dest: Path) -> Path:
    """The repository's tracked files in `dest` (as a clean clone has them, with this tree's edits)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, names.decode().split("\0")):
        src = REPO / name
        if src.is_file():  # (a path deleted in the work tree but not yet in the index is skipped)
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def pip_install(python: Path, folder: Path, env: dict[str, str]) -> None:
    """`pip install folder` into the venv of `python` (a stack_venv), offline: no index, no
    dependencies (the stack is there already), built with this interpreter's setuptools."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
         "--no-deps", "--no-build-isolation", "--no-index", str(folder)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def clean_env() -> dict[str, str]:
    """os.environ without what would point a child process at this checkout or a profile."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SNAKEMAKE_PROFILE", "SYMFLOW_PACKAGE")}


def run_snakemake(workdir: Path, *args: str, timeout: float = 900, check: bool = True, env=None):
    cmd = snakemake_cmd() + ["--cores", "2", *args, "--configfile", str(TINY)]  # (--configfile takes many)
    full_env = {**os.environ, **(env or {})}
    full_env.pop("SNAKEMAKE_PROFILE", None)
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


REPORT = TINY.parent / "report.yaml"


def snakemake_with(workdir: Path, configs, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Snakemake in `workdir` with these config files (merged in order over config/config.yaml)."""
    cmd = snakemake_cmd() + ["--cores", "2", *args, "--configfile", *map(str, configs)]
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="session")
def complete_run(tmp_path_factory) -> Path:
    """A workdir where the smallest whole default target (tiny.yaml + report.yaml) ran to the end;
    tests that share it only read it or dry-run."""
    workdir = make_workdir(tmp_path_factory.mktemp("complete") / "wf")
    snakemake_with(workdir, [TINY, REPORT])
    return workdir


@pytest.fixture()
def workdir(tmp_path) -> Path:
    return make_workdir(tmp_path / "wf")


def rule_of(name: str) -> str:
    """A Snakemake rule's name as symflow.jobs counts it: every pack's own rule
    (train_sgd_pack_<digest>, estimate_eta0_pack_<digest>, compute_gram_block_pack_<digest>) as
    train_sgd_pack, estimate_eta0_pack or compute_gram_block_pack."""
    from symflow.jobs import KINDS, _Packed

    packs = "|".join(kind.rule for kind in KINDS if issubclass(kind, _Packed))
    return re.sub(rf"^({packs})_[0-9a-f]{{10}}$", r"\1", name)


def planned(output: str) -> dict[str, list[str]]:
    """rule -> outputs of the jobs a `snakemake -n` output lists (packs under train_sgd_pack)."""
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in output.splitlines():
        match = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if match:
            rule = rule_of(match.group(1))
        elif rule and line.strip().startswith("output:"):
            jobs.setdefault(rule, []).extend(p.strip() for p in line.split(":", 1)[1].split(","))
            rule = None
    return jobs


def planned_blocks(jobs: dict[str, list[str]]) -> list[str]:
    """The kernel blocks of planned(...): those of their own jobs and those of packs."""
    return [*jobs.get("compute_gram_block", []), *jobs.get("compute_gram_block_pack", [])]


def job_stats(output: str) -> dict[str, int]:
    """rule -> job count from the 'Job stats' table of a `snakemake -n` output (packs under
    train_sgd_pack)."""
    table = output.split("Job stats:", 1)[1]
    counts: dict[str, int] = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match or match.group(1) == "total":
            break
        rule = rule_of(match.group(1))
        counts[rule] = counts.get(rule, 0) + int(match.group(2))
    return counts
