"""Jobs sharing one GPU (resources.jobs_per_gpu): N small training jobs at once against one
alone, whole processes, as the workflow runs them.

Each job is a fresh Python process that does what a train_sgd job does with the device:
symflow.runtime.configure_jax with the job's resources (gpu 1, jobs_per_gpu N: JAX takes at
most 0.95/N of the GPU's memory), import jax and symflow's training, build the network,
compile and train one run for --steps steps with an evaluation every --eval-every, then
exit. The parent times one job alone, then N at once, and prints

    sharing: jobs_per_gpu=N, one alone A s, N at once B s, throughput T x

where T = N * A / B is the jobs per second of N at once against one at a time (above 1:
sharing the device pays; the start-ups and compilations, which leave the GPU idle, overlap
other jobs' steps). Random inputs (shapes are what matters). Not a test: nothing is asserted.

    PYTHONPATH=$PWD python bench/gpu_sharing.py --jobs 4 --resolution 32 --width 16 --steps 300
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def job(args) -> None:
    """One job: set up JAX as the workflow's scripts do, then one cold training run."""
    sys.path.insert(0, str(REPO))
    from symflow.runtime import configure_jax

    configure_jax(1, resources={"gpu": 1, "jobs_per_gpu": args.jobs})
    import numpy as np

    from symflow import train as T
    from symflow.architectures import ModelHP

    model = T.build_model(args.arch, ModelHP(), args.width)
    rng = np.random.default_rng(0)

    def split(n):
        labels = rng.integers(0, 10, n)
        x = rng.standard_normal((n, args.resolution, args.resolution, 3)).astype(np.float32)
        return T.Split(x, np.eye(10, dtype=np.float32)[labels], labels)

    cfg = T.TrainConfig(batch_size=40, max_steps=args.steps, eval_every=args.eval_every, success_train_accuracy=0.0)
    params = T.init_params(model.init_fn, T.init_key(0, 0), (args.resolution, args.resolution, 3))
    result = T.train_and_evaluate(model.apply_fn, params, split(args.m), split(256), split(256), cfg, lr=1e-3,
                                  key=T.order_key(0))  # fmt: skip
    assert result.steps == args.steps, result.stop


def timed_jobs(args, count: int) -> float:
    """Wall seconds of `count` job processes started together."""
    cmd = [sys.executable, __file__, "--job", *sys.argv[1:]]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, env=env) for _ in range(count)]
    codes = [p.wait() for p in procs]
    seconds = time.perf_counter() - start
    if any(codes):
        raise SystemExit(f"a job failed: exit codes {codes}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=4, help="jobs sharing the GPU (N)")
    ap.add_argument("--arch", default="VEC")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--m", type=int, default=256, help="training images")
    ap.add_argument("--job", action="store_true", help=argparse.SUPPRESS)  # a child: one job
    args = ap.parse_args()
    if args.job:
        job(args)
        return 0
    alone = timed_jobs(args, 1)
    together = timed_jobs(args, args.jobs)
    print(f"sharing: jobs_per_gpu={args.jobs}, one alone {alone:.1f} s, {args.jobs} at once {together:.1f} s, "
          f"throughput {args.jobs * alone / together:.2f} x ({args.arch}_{args.width} at {args.resolution} x "
          f"{args.resolution}, {args.steps} steps)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
