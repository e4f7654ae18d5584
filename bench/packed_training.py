"""Packed training throughput: run-steps per second of one packed job against the same runs
trained one by one (issue 18, item 2).

For each (resolution, width) of VEC (or --arch), in one process: R runs (seeds 0..R-1, one
dataset, batch 40, momentum 0.9, a small learning rate so that nothing stops early) trained
for --steps steps with an evaluation every --eval-every steps on --m training and --n-eval
validation and test images, the workflow's real code end to end:

* single: ``symflow.train.train_and_evaluate`` of each run alone (the workflow's one run
  per job), run after run;
* packed: ``symflow.train.packed.train_packed`` of all R at once, with each loop asked for
  (``python``: a Python loop of jitted steps, the CPU default; ``device``: one
  lax.fori_loop per chunk, the default on accelerators).

Rates are run-steps per second (R x steps / seconds), warm (each program compiled once
before the timed call: the steady state of a long job) and cold (the first call, with
compilation, as a fresh job pays it: for single runs, one run's first call, as every job of
one run compiles its own step; process start-up is not counted). The ratio is
packed/single, warm. Wall time; process CPU time too (steadier on a shared CPU). Not a
test: numbers depend on the machine; nothing is asserted.

    PYTHONPATH=$PWD python bench/packed_training.py --resolutions 8 32 --widths 16 32 64 128 --pack 8 \
        --csv bench/results/packed_training.csv

On a 2-core CPU, 32 x 32 at width 128 takes seconds a step: there, e.g.
``--resolutions 8 --widths 16 32 --steps 100``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def measure(arch: str, width: int, resolution: int, pack: int, steps: int, eval_every: int, m: int, n_eval: int,
            loops: list[str], repeats: int) -> list[dict]:
    import jax
    import numpy as np

    from symflow import train as T
    from symflow.architectures import ModelHP
    from symflow.train.packed import PackedRun, train_packed

    model = T.build_model(arch, ModelHP(), width)
    rng = np.random.default_rng(0)

    def split(n):
        labels = rng.integers(0, 10, n)
        x = rng.standard_normal((n, resolution, resolution, 3)).astype(np.float32)
        return T.Split(x, np.eye(10, dtype=np.float32)[labels], labels)

    splits = (split(m), split(n_eval), split(n_eval))
    cfg = T.TrainConfig(batch_size=40, max_steps=steps, eval_every=eval_every, success_train_accuracy=0.0)
    lr = 1e-3  # far below eta0 at these widths: no run stops before its budget
    params = [T.init_params(model.init_fn, T.init_key(s, 0), (resolution, resolution, 3)) for s in range(pack)]
    runs = [PackedRun(p, *splits, cfg, lr=lr, key=T.order_key(s)) for s, p in enumerate(params)]

    def single():
        out = [T.train_and_evaluate(model.apply_fn, r.params, *splits, cfg, lr=lr, key=r.key) for r in runs]
        jax.effects_barrier()
        return out

    def packed(loop):
        def go():
            out = train_packed(model.apply_fn, runs, loop=loop)
            jax.effects_barrier()
            return out

        return go

    base = dict(arch=arch, width=width, resolution=resolution, pack=pack, steps=steps, eval_every=eval_every, m=m,
                n_eval=n_eval, backend=jax.default_backend())
    rows = []
    for name, fn in [("single", single)] + [(f"packed-{loop}", packed(loop)) for loop in loops]:
        if name == "single":  # cold: one run's first call (each job of one run compiles its own step)
            results, cold_wall, _ = _timed(lambda: single()[:1] if pack == 1 else [T.train_and_evaluate(
                model.apply_fn, runs[0].params, *splits, cfg, lr=lr, key=runs[0].key)])
            cold_steps = steps
        else:
            results, cold_wall, _ = _timed(fn)
            cold_steps = pack * steps
        assert all(r.steps == steps for r in results), [r.stop for r in results]
        warm = [_timed(fn)[1:] for _ in range(repeats)]
        wall, cpu = min(w for w, _ in warm), min(c for _, c in warm)
        run_steps = pack * steps
        rows.append(dict(base, mode=name, run_steps_per_s=run_steps / wall, run_steps_per_cpu_s=run_steps / cpu,
                         cold_run_steps_per_s=cold_steps / cold_wall, cold_s=cold_wall, warm_s=wall))
        print(f"  {arch}_{width} {resolution}x{resolution} {name:<14} {run_steps / wall:10.1f} run-steps/s warm, "
              f"{cold_steps / cold_wall:10.1f} cold ({cold_wall:.1f} s with compilation)", flush=True)
    single_rate = rows[0]["run_steps_per_s"]
    single_cold = rows[0]["cold_run_steps_per_s"]
    single_cpu = rows[0]["run_steps_per_cpu_s"]
    for r in rows:
        r["ratio"] = r["run_steps_per_s"] / single_rate
        r["ratio_cold"] = r["cold_run_steps_per_s"] / single_cold
        r["ratio_cpu"] = r["run_steps_per_cpu_s"] / single_cpu
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items()}
                    for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="VEC")
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--pack", type=int, default=8, help="runs per packed job (R)")
    ap.add_argument("--steps", type=int, default=300, help="steps of each run (its budget)")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--m", type=int, default=256, help="training images")
    ap.add_argument("--n-eval", type=int, default=256, help="validation and test images each")
    ap.add_argument("--loops", nargs="+", default=["python", "device"], choices=["python", "device"])
    ap.add_argument("--repeats", type=int, default=2, help="warm timings per mode (best is kept)")
    ap.add_argument("--csv", type=Path, default=None)
    args = ap.parse_args()

    import jax

    print(f"jax {jax.__version__} on {jax.devices()}", flush=True)
    rows = []
    for resolution in args.resolutions:
        for width in args.widths:
            rows += measure(args.arch, width, resolution, args.pack, args.steps, args.eval_every, args.m, args.n_eval,
                            args.loops, args.repeats)
            if args.csv:  # after every case: a run cut short by a time limit keeps what it measured
                write_csv(args.csv, rows)
    print()
    print(f"| arch | resolution | mode | run-steps/s (warm) | packed/single | (CPU time) | run-steps/s (cold) | "
          f"packed/single (cold) |   [{args.pack} runs a pack, {args.steps} steps each, eval every {args.eval_every}]")
    print("|---|--:|---|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['arch']}_{r['width']} | {r['resolution']} | {r['mode']} | {r['run_steps_per_s']:,.1f} | "
              f"{r['ratio']:.2f} | {r['ratio_cpu']:.2f} | {r['cold_run_steps_per_s']:,.1f} | {r['ratio_cold']:.2f} |")


if __name__ == "__main__":
    main()
