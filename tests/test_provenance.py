"""Every result row names the symflow that computed it (symflow.provenance): the version, and the
git commit where symflow runs from a checkout, written by the job itself (never a param, so
nothing reruns on a commit) and copied unchanged by the gathers."""

from __future__ import annotations

import csv
import subprocess

import pytest

from symflow import provenance
from symflow.results import LEGACY_RUN_COLUMNS, RUN_COLUMNS, make_row, read_rows, write_rows

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-c", "init.defaultBranch=main"]


def _repo(path):
    (path / "symflow").mkdir(parents=True)
    (path / "symflow" / "__init__.py").write_text("__version__ = '9.9'\n")
    (path / "README.md").write_text("x\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


def test_checkout_commit_names_head_and_marks_changed_code(tmp_path):
    head = _repo(tmp_path / "repo")
    repo = tmp_path / "repo"
    assert provenance.checkout_commit(repo) == head and len(head) == 40
    (repo / "README.md").write_text("docs only\n")  # outside symflow/ and workflow/: still clean
    assert provenance.checkout_commit(repo) == head
    (repo / "symflow" / "__init__.py").write_text("__version__ = '9.10'\n")
    assert provenance.checkout_commit(repo) == f"{head}-dirty"
    subprocess.run(["git", "checkout", "-q", "--", "symflow"], cwd=repo, check=True)
    (repo / "symflow" / "new.py").write_text("x = 1\n")  # a new module is a change too
    assert provenance.checkout_commit(repo) == f"{head}-dirty"
    # not the top of a work tree (a folder inside one, or no repository): no commit
    assert provenance.checkout_commit(repo / "symflow") == ""
    (tmp_path / "plain").mkdir()
    assert provenance.checkout_commit(tmp_path / "plain") == ""


def test_rows_carry_the_running_symflow_and_gathers_keep_each_rows_own(tmp_path, monkeypatch):
    import symflow
    from symflow.figures.table import gather, load_runs

    monkeypatch.setattr(provenance, "commit", lambda: "c" * 40)
    row = make_row(stage="regression", inference="ntk", dataset="d", path="a.h5")
    assert row["symflow_version"] == symflow.__version__ and row["symflow_commit"] == "c" * 40
    assert list(row) == list(RUN_COLUMNS) and RUN_COLUMNS[-2:] == provenance.PROVENANCE_COLUMNS
    # a row computed by another commit keeps naming it; a row written before the columns
    # existed (a cached result) is read with them empty instead of failing the gather
    write_rows(tmp_path / "new.csv", [row])
    write_rows(tmp_path / "old_commit.csv", [make_row(stage="regression", inference="nngp", path="b.h5",
                                                      symflow_version="0.0.9", symflow_commit="d" * 40)])
    with open(tmp_path / "legacy.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LEGACY_RUN_COLUMNS)
        writer.writeheader()
        writer.writerow({c: row[c] for c in LEGACY_RUN_COLUMNS} | {"path": "c.h5"})
    files = [tmp_path / n for n in ("new.csv", "old_commit.csv", "legacy.csv")]
    assert [r["symflow_commit"] for r in read_rows(files)] == ["c" * 40, "d" * 40, ""]
    monkeypatch.setattr(provenance, "commit", lambda: "e" * 40)  # the gathering job's own commit
    gather(files, tmp_path / "runs.csv")
    runs = load_runs(tmp_path / "runs.csv").set_index("path")
    assert runs.loc["a.h5", "symflow_commit"] == "c" * 40
    assert (runs.loc["b.h5", "symflow_version"], runs.loc["b.h5", "symflow_commit"]) == ("0.0.9", "d" * 40)
    assert runs.loc["c.h5", "symflow_commit"] == ""


def test_tables_computed_at_gather_time_name_that_job(tmp_path, monkeypatch):
    import pandas as pd

    from symflow.claims import write_claims

    monkeypatch.setattr(provenance, "commit", lambda: "f" * 40)
    frame = write_claims(tmp_path / "claims.csv", {})  # no tables: every claim untestable, still stamped
    written = pd.read_csv(tmp_path / "claims.csv", dtype=str, keep_default_na=False)
    assert list(written.columns[-2:]) == list(provenance.PROVENANCE_COLUMNS)
    assert set(written["symflow_commit"]) == {"f" * 40} and len(written) == len(frame) > 0


def test_pip_installed_symflow_names_the_commit_pip_recorded(tmp_path, monkeypatch):
    """A symflow pip installed from a git URL is no checkout: the commit is pip's direct_url.json."""
    import json
    from importlib import metadata

    pkg = tmp_path / "site" / "symflow"
    pkg.mkdir(parents=True)

    class Dist:
        def locate_file(self, name):
            return tmp_path / "site" / name

        def read_text(self, name):
            return json.dumps({"url": "https://example.org/symflow.git",
                               "vcs_info": {"vcs": "git", "commit_id": "a" * 40}})

    monkeypatch.setattr(metadata, "distribution", lambda name: Dist())
    assert provenance._pip_vcs_commit(pkg) == "a" * 40
    assert provenance._pip_vcs_commit(tmp_path / "elsewhere" / "symflow") == ""  # another copy runs


def test_audit_and_s_dist_gathers_keep_each_rows_provenance(tmp_path, monkeypatch):
    """symmetry_audit.csv and figS1.csv: each row the symflow of the job that computed it; rows
    from before the columns existed gathered with them empty."""
    import numpy as np
    import pandas as pd

    from symflow import audit
    from symflow.ensemble import sdist_table, run_s_dist
    from symflow.h5io import write_h5

    monkeypatch.setattr(provenance, "commit", lambda: "a" * 40)
    row = {c: "x" for c in audit.LEGACY_AUDIT_COLUMNS} | {"seed": "0", "verdict": "agrees", "architecture": "VEC"}
    audit.write_rows(tmp_path / "new.csv", [row | provenance.current()])
    with open(tmp_path / "old.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=audit.LEGACY_AUDIT_COLUMNS)
        writer.writeheader()
        writer.writerow(row | {"architecture": "FCN"})
    monkeypatch.setattr(provenance, "commit", lambda: "b" * 40)  # the gathering job's
    audit.gather([tmp_path / "new.csv", tmp_path / "old.csv"], tmp_path / "symmetry_audit.csv")
    table = pd.read_csv(tmp_path / "symmetry_audit.csv", dtype=str, keep_default_na=False).set_index("architecture")
    assert (table.loc["VEC", "symflow_commit"], table.loc["FCN", "symflow_commit"]) == ("a" * 40, "")

    files = []
    for t in ("0.0", "1.0"):
        d = tmp_path / t
        d.mkdir()
        labels = np.arange(6) % 10
        write_h5(d / "mean.h5", {"test_outputs": np.full((6, 10), float(t), np.float32), "labels_test": labels},
                 dict(transform=f"so3_path-t{t}", architecture="VEC", width=16, recipe="nn_plus", m=40, seed=0,
                      members=[0], members_used=[0], dataset="ds"))
        write_h5(d / "ref.h5", {"test_outputs": np.zeros((6, 10)), "labels_test": labels}, {})
        refs = {"VEC_inf": (d / "ref.h5", f"so3_path-t{t}"), "GAP_16": (d / "ref.h5", "so3_path-t0.0")}
        run_s_dist(d / "mean.h5", refs, out_path=d / "sdist.csv")
        files.append(d / "sdist.csv")
    legacy = pd.read_csv(files[1], dtype=str).drop(columns=list(provenance.PROVENANCE_COLUMNS))
    legacy.to_csv(files[1], index=False)
    sdist_table(files, tmp_path / "figS1.csv")
    figs1 = pd.read_csv(tmp_path / "figS1.csv", dtype=str, keep_default_na=False)
    assert list(figs1.columns[-2:]) == list(provenance.PROVENANCE_COLUMNS)
    assert figs1["symflow_commit"].tolist() == ["b" * 40, ""]  # t = 0 computed "now", t = 1 cached
