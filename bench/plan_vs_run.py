"""`symflow plan`'s CPU-hours against what a complete run measured, per stage.

Run after a complete `make run` (or any snakemake run of the default target) in the
folder that holds its benchmarks/:

    .venv/bin/python bench/plan_vs_run.py [--workdir .] [--configfile extra.yaml ...]

Each job of the default target (symflow.jobs) whose log ends in symflow.logs' "process
usage" line gives its CPU time (the whole process: start-up, all threads; unlike the
benchmark files' cpu_time, which Snakemake samples every 30 s and which misses short jobs'
last second, and unlike their wall time, which grows when other work shares the cores;
the logs mirror the benchmark files' paths); the plan's estimate of the same job comes from symflow.plan (the
rates of symflow.costs.RATES). Prints per stage the jobs planned and measured, the
estimated and measured CPU-hours of the measured jobs and their ratio (so a partial run,
or one target such as results/fig4.pdf, is compared job for job), the plan's CPU-hours
for the whole default target, and the median CPU time of the small jobs (tables and
figures: almost only a job's start-up, RATES['job_start_s']).
"""

from __future__ import annotations

import argparse
import re
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


USAGE = re.compile(r"process usage: cpu ([0-9.]+) s")


def read_cpu(log: Path) -> float | None:
    """The job's CPU seconds: the last 'process usage' line of its log (symflow.logs)."""
    found = USAGE.findall(log.read_text(errors="replace")) if log.exists() else []
    return float(found[-1]) if found else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=".", help="the run's working directory (holds benchmarks/)")
    ap.add_argument("--configfile", nargs="*", default=[], help="config files merged over config/config.yaml, as the run had")
    ap.add_argument("--rules", action="store_true", help="also one line per rule (median CPU s per job, est./run)")
    args = ap.parse_args(argv)

    import os

    from symflow.cli import _load_configs
    from symflow.configuration import validate
    from symflow.plan import STAGES

    from symflow.jobs import Jobs
    from symflow.plan import job_cost

    workdir = Path(args.workdir).resolve()
    os.chdir(workdir)  # the data source's digest is read where the run read it
    cfg = validate(_load_configs(["config/config.yaml", *args.configfile]))
    gpu = bool(cfg["resources"]["gpu"])
    stage_of = {rule: stage for stage, rules in STAGES.items() for rule in rules}
    rows = {stage: {"jobs": 0, "plan_h": 0.0, "measured": 0, "est_s": 0.0, "cpu_s": 0.0, "cpu": []} for stage in STAGES}
    per_rule: dict[str, list[tuple[float, float]]] = {}
    for rule, jobs in Jobs(cfg).walk().items():
        if rule == "all":
            continue
        row = rows[stage_of[rule]]
        for job in jobs:
            cost = job_cost(cfg, job)
            on_cpu = not (gpu and cost.gpu)
            row["jobs"] += 1
            row["plan_h"] += cost.seconds * cost.threads / 3600 if on_cpu else 0.0
            log = workdir / job.log()
            cpu = read_cpu(log) if on_cpu else None
            if cpu is not None:
                row["measured"] += 1
                row["est_s"] += cost.seconds * cost.threads
                row["cpu_s"] += cpu
                row["cpu"].append(cpu)
                per_rule.setdefault(rule, []).append((cost.seconds * cost.threads, cpu))

    head = (f"{'stage':<14} {'jobs':>6} {'measured':>9} {'est. CPU-h':>11} {'run CPU-h':>10} {'est./run':>9}"
            f" {'plan CPU-h (all)':>17}")
    print(head)
    print("-" * len(head))
    tot = {"est_s": 0.0, "cpu_s": 0.0, "plan_h": 0.0}
    for stage, r in rows.items():
        for k in tot:
            tot[k] += r[k]
        ratio = f"{r['est_s'] / r['cpu_s']:.2f}" if r["cpu_s"] else "-"
        print(f"{stage:<14} {r['jobs']:>6} {r['measured']:>9} {r['est_s'] / 3600:>11.3f} {r['cpu_s'] / 3600:>10.3f}"
              f" {ratio:>9} {r['plan_h']:>17.3f}")
    print("-" * len(head))
    print(f"{'total':<14} {'':>6} {'':>9} {tot['est_s'] / 3600:>11.3f} {tot['cpu_s'] / 3600:>10.3f}"
          f" {tot['est_s'] / max(tot['cpu_s'], 1e-9):>9.2f} {tot['plan_h']:>17.3f}")
    if args.rules:
        print(f"\n{'rule':<24} {'measured':>8} {'median CPU s':>13} {'median est. s':>14} {'est./run':>9}")
        for rule, pairs in sorted(per_rule.items()):
            est, cpu = zip(*pairs)
            print(f"{rule:<24} {len(pairs):>8} {statistics.median(cpu):>13.2f} {statistics.median(est):>14.2f}"
                  f" {sum(est) / max(sum(cpu), 1e-9):>9.2f}")
    small = rows["figures"]["cpu"]
    if small:
        print(f"median CPU time of the {len(small)} table and figure jobs: {statistics.median(small):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
