"""The facts of the report's first page (results/report/summary.rst): what was run and what it
decides, from the config and the gathered tables. workflow/report/workflow.rst (Snakemake's
`report:` page) includes the file; Snakemake renders it with docutils.

What was run: the data (source, its identity digest, resolution, sizes: the dataset name), the
model, the experiments' seeds, the runs (kernel regressions, finite networks and how many
failed, ensembles, the symmetry audit's verdicts), the scale against the paper's, and the symflow
version and commit that wrote this page and that computed the runs (symflow.provenance). What it
decides: the count of claims per verdict, then each claim with its verdict (results/claims.csv).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

VERDICT_ORDER = ("holds", "fails", "inconclusive", "untestable")


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _commit(version: str, commit: str) -> str:
    if not version and not commit:
        return "a symflow that did not record itself (rows cached from before the provenance columns)"
    return f"{version or '(unknown version)'}" + (f" at commit ``{commit}``" if commit else " (no git commit)")


def _verdict_counts(verdicts) -> list[tuple[str, int]]:
    counts = verdicts.value_counts()
    order = [v for v in VERDICT_ORDER if v in counts] + sorted(v for v in counts.index if v not in VERDICT_ORDER)
    return [(v, int(counts[v])) for v in order]


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    """An rst list-table."""
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in (header, *rows):
        out.append(f"   * - {row[0]}")
        out += [f"     - {cell}" for cell in row[1:]]
    return out + [""]


def _escape(text) -> str:
    """Plain text safe inside rst inline markup (no stray roles, emphasis or references)."""
    text = " ".join(str(text).split())
    for char in ("\\", "*", "`", "|", "_"):
        text = text.replace(char, "\\" + char)
    return text


def summary_rst(config: Mapping, dataset: str, *, claims, runs, audit, training) -> str:
    """The page's text (rst) from the resolved config (less its speed knobs), the dataset name and
    the gathered tables as DataFrames (claims.csv, runs.csv as symflow.figures.table.load_runs
    reads it, symmetry_audit.csv, training.csv)."""
    from symflow.configuration import parse_dataset_id
    from symflow.provenance import current
    from symflow.sources import source_title

    d = parse_dataset_id(dataset)
    source = ("the full CIFAR-10 archive (MD5-checked)" if d["source"] == "official"
              else f"{source_title(d['source'])}, source '{d['source']}' (digest {d['digest']})"
              if d["source"] != "sample"
              else "the real CIFAR-10 sample shipped with symflow" if not config["data"].get("sample_dir")
              else f"the CIFAR-10 images in {config['data']['sample_dir']}")
    paper_scale = d["source"] == "official" and d["resolution"] == 32 and d["n_train"] >= 45000
    m = config["model"]
    exp = config["experiments"]
    seeds = sorted({s for f in ("fig2", "fig3", "fig4", "figS5", "figS6") for s in exp[f]["seeds"]})
    regressions = runs[runs["stage"] == "regression"]
    finite = runs[runs["stage"] == "sgd"]
    ensembles = runs[runs["stage"] == "ensemble"]
    imagenet = runs[runs["stage"] == "imagenet"]
    audit_counts = ", ".join(f"{v}: {n}" for v, n in _verdict_counts(audit["verdict"]))
    me = current()

    lines = ["What was run", "------------", ""]
    lines += [
        f"- **Data**: {source}, block-averaged to {d['resolution']} x {d['resolution']}: "
        f"{d['n_train']:,} training, {d['n_val']:,} validation and {d['n_test']:,} test images "
        + (f"({d['n_test'] - d['test_holdout']:,} of the test batch and {d['test_holdout']:,} held-out training "
           "images) " if d.get("test_holdout") else "")
        + f"(split seed {d['split_seed']}). Dataset ``{dataset}``: its name carries the digest of the "
        f"source's checksums (``{d['digest']}``), so it names these exact images.",
        f"- **Models**: depth {m['depth']}, sigma_w^2 = {m['weight_variance']:g}, sigma_b^2 = {m['bias_variance']:g}, "
        f"{m['filter_size']} x {m['filter_size']} filters; kernels by {config['kernels']['backend']} in "
        f"{config['kernels']['dtype']}; seeds {', '.join(map(str, seeds))}.",
        f"- **Runs**: {_n(len(regressions), 'kernel regression')}; "
        f"{_n(len(finite), 'finite network')} trained by SGD ({int(finite['failed'].sum()):,} failed: "
        f"see Failed runs and Training); {_n(len(ensembles), 'ensemble')}"
        + (f"; {_n(len(imagenet), 'ImageNet run')}" if len(imagenet) else "")
        + f". Symmetry audit (Thm 4.1, checked on the data): {_n(len(audit), 'pair')}, {audit_counts or 'none'}.",
        "- **Scale**: " + ("the paper's (full CIFAR-10 at 32 x 32, 45k training images)." if paper_scale else
                           "reduced (the paper's is full CIFAR-10 at 32 x 32 with 45k training images): "
                           "compare trends and signs, not numbers; the claims say which are testable here."),
        f"- **symflow**: {_commit(me['symflow_version'], me['symflow_commit'])} wrote this page. "
        "Every row of the tables names the symflow that computed it (columns symflow_version, "
        "symflow_commit); the runs here were computed by "
        + "; ".join(f"{_commit(v, c)} ({_n(n, 'row')})" for (v, c), n in _made_by(runs)) + ".",
        "- **Configuration**: every value, defaults filled in, is ``results/tables/config.yaml`` "
        "(category Configuration).",
        "",
    ]
    lines += ["What it decides", "---------------", ""]
    if len(claims):
        counts = ", ".join(f"**{v}: {n}**" for v, n in _verdict_counts(claims["verdict"]))
        lines += [f"Of {_n(len(claims), 'claim')} of the paper (results/claims.csv, category Claims): {counts}.", ""]
        rows = [(f"``{r['claim']}``", _escape(r.get("source", "")), f"**{_escape(r['verdict'])}**")
                for _, r in claims.iterrows()]
        lines += _table(rows, ("claim", "source", "verdict"))
    else:
        lines += ["No claims were evaluated.", ""]
    if len(training):
        total = training[training["architecture"] == "all"]
        if len(total):
            t = total.iloc[0]
            lines += [f"Finite-network training: {int(t['runs']):,} runs, {int(t['converged']):,} converged "
                      f"(median {float(t['median_epochs']):g} epochs), {float(t['total_wall_min']):.0f} min in all "
                      "(results/tables/training.csv, category Training).", ""]
    return "\n".join(lines)


def _made_by(runs) -> list[tuple[tuple[str, str], int]]:
    """(version, commit) -> rows of runs.csv, most rows first."""
    counts = runs.groupby(["symflow_version", "symflow_commit"], dropna=False).size().sort_values(ascending=False)
    return [((str(v or ""), str(c or "")), int(n)) for (v, c), n in counts.items()]


def write_summary(out: str | os.PathLike, config: Mapping, dataset: str, *, claims_csv, runs_csv, audit_csv,
                  training_csv) -> str:
    """summary_rst of these files, written atomically to `out`; returns the text."""
    import pandas as pd

    from symflow.figures.table import load_runs
    from symflow.h5io import atomic_path

    text = summary_rst(config, dataset, claims=pd.read_csv(claims_csv, dtype=str, keep_default_na=False),
                       runs=load_runs(runs_csv), audit=pd.read_csv(audit_csv, dtype=str, keep_default_na=False),
                       training=pd.read_csv(training_csv, keep_default_na=False))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".rst") as tmp:
        Path(tmp).write_text(text + "\n")
    return text
