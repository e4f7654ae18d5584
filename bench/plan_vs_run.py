"""`symflow plan`'s CPU-hours against what a complete run measured, per stage.

Run after a complete `make run` (or any snakemake run of the default target) in the
folder that holds its benchmarks/:

    .venv/bin/python bench/plan_vs_run.py [--workdir .] [--configfile extra.yaml ...]

Each job's benchmark file (benchmarks/**.tsv, written by Snakemake) gives its CPU time
(`cpu_time`: all threads, start-up included); the plan's CPU-hours come from
symflow.plan (the rates of symflow.plan.RATES). Prints per stage the jobs planned and
measured, the hours of each and their ratio, and the median CPU time of the small jobs
(tables and figures: almost only a job's start-up, RATES['job_start_s']).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def stage_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).parts
    top = parts[0]
    if top == "data":
        return "data"
    if top in ("kernels", "audit"):
        return "kernel blocks"
    if top == "regression":
        return "regression"
    if top == "sgd":
        return "eta0" if "eta0" in parts else "sgd"
    if top == "ensembles":
        return "sgd"
    return "figures"


def read_cpu(path: Path) -> float:
    lines = path.read_text().splitlines()
    head, row = lines[0].split("\t"), lines[1].split("\t")
    return float(row[head.index("cpu_time")])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=".", help="the run's working directory (holds benchmarks/)")
    ap.add_argument("--configfile", nargs="*", default=[], help="config files merged over config.yaml, as the run had")
    args = ap.parse_args(argv)

    import os

    from symflow.cli import _load_configs
    from symflow.configuration import validate
    from symflow.plan import STAGES, plan

    workdir = Path(args.workdir).resolve()
    os.chdir(workdir)  # the data source's digest is read where the run read it
    cfg = validate(_load_configs(["config.yaml", *args.configfile]))
    p = plan(cfg)
    planned = {stage: (0, 0.0) for stage in STAGES}
    for r in p.rules:
        jobs, hours = planned[r.stage]
        planned[r.stage] = (jobs + (0 if r.rule == "all" else r.jobs), hours + (0.0 if r.gpu else r.hours))

    root = workdir / "benchmarks"
    measured: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for tsv in sorted(root.rglob("*.tsv")):
        measured[stage_of(tsv, root)].append(read_cpu(tsv))

    print(f"{'stage':<15} {'jobs plan':>9} {'jobs run':>9} {'CPU-h plan':>11} {'CPU-h run':>10} {'plan/run':>9}")
    total_p = total_m = 0.0
    for stage in STAGES:
        jobs, hours = planned[stage]
        cpu = sum(measured[stage]) / 3600
        total_p, total_m = total_p + hours, total_m + cpu
        ratio = f"{hours / cpu:.2f}" if cpu else "-"
        print(f"{stage:<15} {jobs:>9} {len(measured[stage]):>9} {hours:>11.3f} {cpu:>10.3f} {ratio:>9}")
    print(f"{'total':<15} {'':>9} {'':>9} {total_p:>11.3f} {total_m:>10.3f} {total_p / max(total_m, 1e-9):>9.2f}")
    small = measured["figures"]
    if small:
        print(f"median CPU time of the {len(small)} table and figure jobs: {statistics.median(small):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
