"""Which symflow computed a result: its version and, where it runs from a git checkout, the commit.

Every metrics row (symflow.results.RUN_COLUMNS), audit row and S-Dist row is written by the job
that computed it, and that job stamps it with :func:`current` (``symflow_version``,
``symflow_commit``); the gathered tables (runs.csv, the figures' tables, curves.csv,
failed_runs.csv, symmetry_audit.csv, figS1.csv) copy those columns as they are, so a row cached
from an earlier commit keeps naming that commit. Tables a job computes from other tables
(claims.csv, training.csv) name the symflow of that job.

Why not a param: Snakemake reruns a job whose params change, so a commit in params would rerun
every job on every commit; a column written by the job itself changes only when the job runs
anyway. Why not a column filled in at gather time: a gather job reruns whenever one of its
inputs changes, and would then label every cached row with the gathering code's commit, not
the one that computed it.

The commit is read when a job runs, from the folder symflow was imported from: ``git rev-parse
HEAD`` where that folder is the top of a git work tree (a checkout, or the module folder of a
deployed project), with ``-dirty`` appended when tracked files under symflow/ or workflow/
differ from it or new files lie there (``git describe --dirty``'s convention); for a package pip installed from a git
URL, the commit pip recorded (direct_url.json); else empty (a release installed from an index:
the version names it).
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

PROVENANCE_COLUMNS = ("symflow_version", "symflow_commit")


def version() -> str:
    """The version of the symflow that is running (its own ``__version__``, not the installed
    distribution's metadata, which can name another copy)."""
    import symflow

    return symflow.__version__


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):  # no git on this machine
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def checkout_commit(root: str | Path) -> str:
    """HEAD of the git work tree whose top folder is `root` ('-dirty' where files under symflow/ or
    workflow/ differ from it or are new); '' where `root` is no such top folder or git is absent."""
    root = Path(root).resolve()
    top = _git(root, "rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() != root:
        return ""
    head = _git(root, "rev-parse", "--verify", "-q", "HEAD")
    if not head:
        return ""
    changed = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", "symflow", "workflow")
    return f"{head}-dirty" if changed else head


def _pip_vcs_commit(package_dir: Path) -> str:
    """The commit pip recorded for a symflow installed from a git URL, if `package_dir` is that install."""
    from importlib import metadata

    try:
        dist = metadata.distribution("symflow")
        if Path(dist.locate_file("symflow")).resolve() != package_dir:
            return ""  # the running symflow is not this distribution's copy
        info = json.loads(dist.read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, ValueError, OSError):
        return ""
    return str(info.get("vcs_info", {}).get("commit_id", ""))


@functools.lru_cache(maxsize=1)
def commit() -> str:
    """The commit of the running symflow (see the module's docstring); '' where none is known."""
    import symflow

    package_dir = Path(symflow.__file__).resolve().parent
    return checkout_commit(package_dir.parent) or _pip_vcs_commit(package_dir)


def current() -> dict[str, str]:
    """The provenance columns of a row this process computes."""
    return {"symflow_version": version(), "symflow_commit": commit()}


def stamp(frame):
    """`frame` (a DataFrame this process computed) with the provenance columns last, filled in."""
    out = frame.drop(columns=[c for c in PROVENANCE_COLUMNS if c in frame.columns])
    for column, value in current().items():
        out[column] = value
    return out
