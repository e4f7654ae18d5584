"""Packed training at the workflow's level: the training runs of a config (with their data
and eta0 jobs) from an empty folder, `snakemake` with sgd.pack = R against sgd.pack = 1, in
turn, whole processes; prints wall and CPU seconds of each and the ratios packed/single
measured in the same call. Where a pack also saves job start-ups, this is the figure that
says whether packing pays on a machine (bench/packed_training.py times the training alone).

    PYTHONPATH=$PWD .venv/bin/python bench/packed_workflow.py --pack 4 --repeats 2
    PYTHONPATH=$PWD python bench/packed_workflow.py --configfile config/gpu.yaml --pack 8 --repeats 1  # a GPU node
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_targets(configfiles: list[str]) -> list[str]:
    """The metrics files of every training run of the default target."""
    from symflow.cli import _load_configs
    from symflow.configuration import validate
    from symflow.jobs import Jobs, Run

    config = validate(_load_configs([str(REPO / "config" / "config.yaml"), *configfiles]))
    config["sgd"]["pack"] = 1
    return sorted(run.output("metrics") for run in Jobs(config).walk()[Run.rule])


def one(folder: Path, configfiles: list[str], pack: int, targets: list[str], cores: int) -> tuple[float, float]:
    """Wall and CPU seconds (children's user + sys) of one snakemake call from an empty folder."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    (folder / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", folder / "config" / "config.yaml")
    os.symlink(REPO / "symflow" / "cifar-10-sample", folder / "data" / "cifar-10-sample")
    (folder / "pack.yaml").write_text(f"sgd: {{pack: {pack}}}\n")
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake), "-s", str(REPO / "Snakefile"), "--cores", str(cores), "--quiet", "all",
           "--configfile", *configfiles, "pack.yaml", "--", *targets]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(folder / "run.log", "w") as log:
        proc = subprocess.run(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"snakemake failed (sgd.pack {pack}); see {folder / 'run.log'}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configfile", nargs="*", default=[str(REPO / "tests" / "configs" / "tiny.yaml")],
                    help="merged over config/config.yaml (default: the tiny test config)")  # fmt: skip
    ap.add_argument("--pack", type=int, default=4, help="sgd.pack of the packed calls (default 4)")
    ap.add_argument("--repeats", type=int, default=2, help="calls of each, in turn (default 2)")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    configfiles = [str(Path(c).resolve()) for c in args.configfile]
    targets = run_targets(configfiles)
    print(f"{len(targets)} training runs of {' + '.join(Path(c).name for c in configfiles)}; "
          f"sgd.pack {args.pack} against 1, {args.repeats} call(s) each, --cores {args.cores}", flush=True)  # fmt: skip
    times: dict[int, list[tuple[float, float]]] = {1: [], args.pack: []}
    with tempfile.TemporaryDirectory(prefix="packed_workflow.") as tmp:
        for i in range(args.repeats):
            for pack in (args.pack, 1):
                wall, cpu = one(Path(tmp) / f"pack{pack}", configfiles, pack, targets, args.cores)
                times[pack].append((wall, cpu))
                print(f"  call {i + 1}, sgd.pack {pack}: wall {wall:.1f} s, CPU {cpu:.1f} s", flush=True)
    med = {p: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for p, t in times.items()}
    print(f"\n{'sgd.pack':>8} {'wall s':>8} {'CPU s':>8}")
    for pack in (1, args.pack):
        print(f"{pack:>8} {med[pack][0]:>8.1f} {med[pack][1]:>8.1f}")
    print(f"packed/single: wall {med[args.pack][0] / med[1][0]:.3f}, CPU {med[args.pack][1] / med[1][1]:.3f} (medians)")


if __name__ == "__main__":
    main()
