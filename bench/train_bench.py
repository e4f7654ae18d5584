"""Training throughput: symflow's SGD loop against a minimal hand-written jitted loop.

For each architecture (at its default-config width, 8x8 inputs, batch 40), in the same
process and interleaved so that machine load hits both alike:

* project: ``symflow.train.train_steps`` (a jitted lax.fori_loop over eval_every steps,
  mini-batches drawn on device from per-epoch permutations, flax TrainState, optax
  chain(add_decayed_weights, sgd(momentum))), timed in chunks of --chunk steps;
* minimal: one ``jax.jit`` step of the same stax model (value_and_grad of the same
  loss, hand-written heavy-ball momentum), called from a Python loop on one fixed batch
  already on the device.

It prints steps/s of each and the ratio project/minimal (best of --repeats), in wall
time and in process CPU time (steps per CPU-second: robust to other processes on a
shared machine; with 1 thread it is the throughput the job would have alone), for
each XLA thread count asked for (each count runs in its own subprocess: XLA reads its
thread flags once, at import). Not a test: no assertion, numbers depend on the machine.

    PYTHONPATH=$PWD python bench/train_bench.py --threads 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WIDTHS = {"FCN": 256, "LCN": 8, "VEC": 32, "GAP": 32, "LAP4": 32, "LAP8": 32}


def measure(arch: str, width: int, resolution: int, batch: int, m: int, chunk: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from symflow import train as T
    from symflow.architectures import ModelHP

    hp = ModelHP()
    model = T.build_model(arch, hp, width)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((m, resolution, resolution, 3)).astype(np.float32))
    labels = rng.integers(0, 10, m)
    y = jnp.asarray(np.eye(10, dtype=np.float32)[labels])
    params = T.init_params(model.init_fn, T.init_key(0, 0), (resolution, resolution, 3))
    lr, momentum = 1e-3, 0.9  # small: the timing must not meet a NaN

    # project loop
    state = T.create_train_state(model.apply_fn, params, lr, momentum, 1e-7)
    key = T.order_key(0)
    state, loss, _ = T.train_steps(state, x, y, key, chunk, batch)  # compile + warm up
    jax.block_until_ready(state)

    def run_project():
        nonlocal state
        t, c = time.perf_counter(), time.process_time()
        state, loss, bad = T.train_steps(state, x, y, key, chunk, batch)
        int(bad)  # the loop's one host sync per chunk
        jax.block_until_ready(state.params)
        return time.perf_counter() - t, time.process_time() - c

    # minimal loop
    apply_fn = model.apply_fn

    @jax.jit
    def step(p, v, xb, yb):
        loss, g = jax.value_and_grad(lambda q: 0.5 * jnp.mean((apply_fn(q, xb) - yb) ** 2))(p)
        v = jax.tree_util.tree_map(lambda a, b: momentum * a + b, v, g)
        p = jax.tree_util.tree_map(lambda a, b: a - lr * b, p, v)
        return p, v, loss

    xb, yb = x[:batch], y[:batch]
    p = params
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    p, v, _ = step(p, v, xb, yb)
    jax.block_until_ready(p)

    def run_minimal():
        nonlocal p, v
        t, c = time.perf_counter(), time.process_time()
        for _ in range(chunk):
            p, v, _ = step(p, v, xb, yb)
        jax.block_until_ready(p)
        return time.perf_counter() - t, time.process_time() - c

    project, minimal = [], []
    for _ in range(repeats):  # interleaved, so that load changes hit both alike
        project.append(run_project())
        minimal.append(run_minimal())
    wall_p, wall_m = min(t for t, _ in project), min(t for t, _ in minimal)
    cpu_p, cpu_m = min(c for _, c in project), min(c for _, c in minimal)
    return {
        "arch": arch,
        "width": width,
        "project_steps_per_s": chunk / wall_p,
        "minimal_steps_per_s": chunk / wall_m,
        "ratio": wall_m / wall_p,
        "project_steps_per_cpu_s": chunk / cpu_p,
        "minimal_steps_per_cpu_s": chunk / cpu_m,
        "cpu_ratio": cpu_m / cpu_p,
        "load_average": os.getloadavg()[0],
    }


def child(args) -> None:
    from symflow.runtime import configure_jax

    configure_jax(args.child_threads)
    for arch in args.arch:
        width = args.width or DEFAULT_WIDTHS.get(arch, 32)
        r = measure(arch, width, args.resolution, args.batch, args.m, args.chunk, args.repeats)
        r["threads"] = args.child_threads
        print(json.dumps(r), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", nargs="+", default=list(DEFAULT_WIDTHS))
    ap.add_argument("--width", type=int, default=None, help="one width for every arch (default: the config's)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--resolution", type=int, default=8)
    ap.add_argument("--batch", type=int, default=40)
    ap.add_argument("--m", type=int, default=250, help="training examples the project loop draws batches from")
    ap.add_argument("--chunk", type=int, default=100, help="steps per timed chunk (the loop's eval_every)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child-threads", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_threads is not None:
        child(args)
        return
    rows = []
    for threads in args.threads:
        cmd = [sys.executable, __file__, "--child-threads", str(threads)] + sys.argv[1:]
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        env.pop("XLA_FLAGS", None)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        out = proc.stdout
        rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    print(
        f"{'arch':6} {'width':>5} {'threads':>7} {'project/s':>10} {'minimal/s':>10} {'ratio':>6}"
        f" {'project/cpu-s':>13} {'minimal/cpu-s':>13} {'cpu ratio':>9} {'load':>5}"
    )
    for r in rows:
        print(
            f"{r['arch']:6} {r['width']:5d} {r['threads']:7d} {r['project_steps_per_s']:10.1f} "
            f"{r['minimal_steps_per_s']:10.1f} {r['ratio']:6.2f} {r['project_steps_per_cpu_s']:13.1f} "
            f"{r['minimal_steps_per_cpu_s']:13.1f} {r['cpu_ratio']:9.2f} {r['load_average']:5.1f}"
        )


if __name__ == "__main__":
    main()
