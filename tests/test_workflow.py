"""The workflow as a user runs it: lint, format, and the data stage + Fig. S2 on the tiny config."""

from __future__ import annotations

import subprocess

import h5py
import pytest

from conftest import REPO, run_snakemake, snakemake_cmd


def test_lint_is_clean():
    proc = subprocess.run(snakemake_cmd() + ["--lint"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_snakefmt_is_clean():
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "snakefmt"
    files = ["Snakefile", *sorted(str(p.relative_to(REPO)) for p in (REPO / "workflow" / "rules").glob("*.smk"))]
    proc = subprocess.run([str(exe), "--check", *files], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.workflow
def test_figS2_on_the_tiny_config(workdir):
    run_snakemake(workdir, "results/figS2.pdf", "results/figS2.png")
    assert (workdir / "results" / "figS2.pdf").stat().st_size > 10_000
    assert (workdir / "results" / "figS2.png").read_bytes()[:4] == b"\x89PNG"
    files = sorted((workdir / "results" / "data").rglob("*.h5"))
    assert len(files) == 4  # identity, o3_pixel, so3_path t=0 and t=1 (tiny config)
    for f in files:
        with h5py.File(f) as h:
            assert h["x_train"].shape == (200, 8, 8, 3) and "content_sha256" in h.attrs
    logs = list((workdir / "logs" / "data").rglob("*.log"))
    assert logs and all("data stage" in p.read_text() for p in logs)
    # nothing to do on a second run: every output is cached
    proc = run_snakemake(workdir, "-n", "results/figS2.pdf")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.workflow
def test_report_tables_on_the_tiny_config(workdir):
    """The report's config and paper-values tables (the default target's last job; it once
    failed only when run from the Snakefile, on a path built from snakemake.scriptdir)."""
    import pandas as pd
    import yaml

    run_snakemake(workdir, "results/tables/config.yaml", "results/tables/paper_values.csv")
    written = pd.read_csv(workdir / "results" / "tables" / "paper_values.csv")
    shipped = pd.read_csv(REPO / "symflow" / "paper_values.csv")
    pd.testing.assert_frame_equal(written, shipped)
    config = yaml.safe_load((workdir / "results" / "tables" / "config.yaml").read_text())
    assert config["data"]["n_train"] == 200  # the tiny config, resolved
