"""Pairs per second of symflow's kernel engine and of plain neural-tangents, same run.

For each architecture and resolution: NNGP + NTK together, float32, random inputs
x1, x2 of n images each (n^2 pairs), computed by

    engine  symflow.engine.kernel_fn(arch, hp, pair_batch=b^2)
    nt      nt.batch(stax kernel_fn, batch_size=b) (jitted inside nt.batch)

with the same n and the same b x b pairs per step. Compile time is excluded (one
warm-up call first); a rate is the median over --repeats timed repeats, each
looping the call until --min-seconds have passed. The machine's limits are
measured in the same run (a big float32 matmul: peak flop rate; a big copy:
memory bandwidth), and the engine's operation and byte count per pair
(symflow.engine.cost_per_pair) turn a rate into a fraction of the machine's limit:

    fraction = max(flops / peak_flops, bytes / bandwidth) * pairs_per_second

See bench/README.md for the command. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# default sizes: resolution -> (n images per side, b images per side of a step)
SIZES = {4: (64, 32), 8: (32, 16), 16: (8, 8), 32: (2, 2)}
# FCN / VEC / LCN carry far less per pair: more pairs for a measurable call
SMALL_STATE_FACTOR = 4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8"])
    p.add_argument("--resolutions", nargs="+", type=int, default=[8, 16])
    p.add_argument("--n", type=int, default=None, help="images per side (default: by resolution, SIZES)")
    p.add_argument("--batch", type=int, default=None, help="images per side of one step (default: SIZES)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=0.5, help="each repeat loops the call this long")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="if one call takes longer, time a single call instead of --repeats (noted in the table)",
    )
    p.add_argument("--skip-nt", action="store_true", help="engine only")
    p.add_argument("--threads", type=int, default=None, help="XLA CPU threads (default: all)")
    p.add_argument("--csv", default="bench/results/kernel_bench.csv")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def timed(fn, *args, repeats, min_seconds, max_seconds):
    """(median seconds per call, number of repeats, compile+first call seconds)."""
    t0 = time.perf_counter()
    block(fn(*args))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    block(fn(*args))
    one = time.perf_counter() - t0
    if one > max_seconds:
        return one, 1, first
    times = []
    for _ in range(repeats):
        calls, t0 = 0, time.perf_counter()
        while True:
            block(fn(*args))
            calls += 1
            el = time.perf_counter() - t0
            if el >= min_seconds:
                break
        times.append(el / calls)
    return statistics.median(times), repeats, first


def block(out):
    import jax

    jax.block_until_ready(out)
    for o in out:
        np.asarray(o)
    return out


def machine_limits(repeats=5):
    """(peak float32 flop/s from a big matmul, memory bandwidth in bytes/s from a big copy)."""
    import jax
    import jax.numpy as jnp

    n = 2048
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    mm(a).block_until_ready()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        mm(a).block_until_ready()
        ts.append(time.perf_counter() - t0)
    flops = 2 * n**3 / min(ts)

    m = 64 << 20  # 64 Mi floats = 256 MiB, well beyond any cache
    b = jnp.ones((m,), jnp.float32)
    cp = jax.jit(lambda x: x * 1.0000001)  # read + write, not elided
    cp(b).block_until_ready()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        cp(b).block_until_ready()
        ts.append(time.perf_counter() - t0)
    bandwidth = 2 * 4 * m / min(ts)
    return flops, bandwidth


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        from symflow.runtime import configure_jax

        configure_jax(threads=args.threads)
    import jax
    import jax.numpy as jnp

    from symflow._nt import nt
    from symflow.architectures import ARCHITECTURES, ModelHP
    from symflow.engine import cost_per_pair, kernel_fn, state_bytes_per_pair

    hp = ModelHP()
    peak_flops, bandwidth = machine_limits()
    print(f"machine: {os.cpu_count()} CPUs, jax {jax.__version__} on {jax.default_backend()}; "
          f"matmul {peak_flops / 1e9:.1f} GFLOP/s, copy {bandwidth / 1e9:.1f} GB/s", flush=True)

    rows = []
    rng = np.random.default_rng(args.seed)
    for res in args.resolutions:
        for arch in args.archs:
            a = ARCHITECTURES.get(arch)
            try:
                a.check_resolution(res)
            except ValueError:
                continue
            n, b = SIZES.get(res, (2, 2))
            if not a.spatial or arch in ("VEC", "LCN"):
                n, b = n * SMALL_STATE_FACTOR, b * SMALL_STATE_FACTOR
            n, b = args.n or n, args.batch or b
            b = min(b, n)
            if n % b:
                raise SystemExit(f"--n {n} must be a multiple of --batch {b}")
            x1 = jnp.asarray(rng.standard_normal((n, res, res, 3)), jnp.float32)
            x2 = jnp.asarray(rng.standard_normal((n, res, res, 3)), jnp.float32)
            pairs = n * n
            cost = cost_per_pair(arch, hp, (res, res, 3), 4)
            lower = max(cost["flops"] / peak_flops, cost["bytes"] / bandwidth)  # seconds per pair

            eng = kernel_fn(arch, hp, pair_batch=b * b)
            t_e, rep_e, c_e = timed(eng, x1, x2, repeats=args.repeats, min_seconds=args.min_seconds,
                                    max_seconds=args.max_seconds)
            row = dict(
                arch=arch,
                resolution=res,
                n=n,
                batch=b,
                pairs=pairs,
                engine_pairs_per_s=pairs / t_e,
                engine_repeats=rep_e,
                engine_first_call_s=c_e,
                nt_pairs_per_s=float("nan"),
                nt_repeats=0,
                nt_first_call_s=float("nan"),
                ratio=float("nan"),
                flops_per_pair=cost["flops"],
                bytes_per_pair=cost["bytes"],
                engine_fraction_of_limit=lower * pairs / t_e,
                nt_fraction_of_limit=float("nan"),
                state_bytes_per_pair=state_bytes_per_pair(arch, hp, (res, res, 3), 4),
                peak_gflops=peak_flops / 1e9,
                bandwidth_gbs=bandwidth / 1e9,
            )
            if not args.skip_nt:
                kf = a.stax(hp)[2]
                ntf = nt.batch(kf, batch_size=b, device_count=0)
                ntf2 = lambda x, y: ntf(x, y, ("nngp", "ntk"))  # noqa: E731
                t_n, rep_n, c_n = timed(ntf2, x1, x2, repeats=args.repeats, min_seconds=args.min_seconds,
                                        max_seconds=args.max_seconds)
                # the two must agree (off-diagonal pairs: no self-pair cancellation)
                ke, kn = block(eng(x1, x2)), block(ntf2(x1, x2))
                err = max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)) / np.abs(np.asarray(v))))
                          for u, v in zip(ke, kn))
                row.update(nt_pairs_per_s=pairs / t_n, nt_repeats=rep_n, nt_first_call_s=c_n,
                           ratio=t_n / t_e, nt_fraction_of_limit=lower * pairs / t_n, max_rel_diff=err)
            rows.append(row)
            print(f"{arch:5s} R={res:2d} n={n} b={b}: engine {row['engine_pairs_per_s']:10.1f} pairs/s, "
                  f"nt {row['nt_pairs_per_s']:10.1f} pairs/s, ratio {row['ratio']:6.1f}", flush=True)

    out = Path(args.csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, keys)
        w.writeheader()
        w.writerows(rows)
    print(f"\nwrote {out}\n")
    print(markdown(rows, peak_flops, bandwidth))
    return 0


def _fmt_bytes(x: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if x < 1000:
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1000
    return f"{x:.1f} TB"


def markdown(rows, peak_flops, bandwidth) -> str:
    lines = [
        f"machine limits: matmul {peak_flops / 1e9:.1f} GFLOP/s, copy {bandwidth / 1e9:.1f} GB/s",
        "",
        "| arch | R | pairs | engine pairs/s | nt pairs/s | engine/nt | flop/pair | byte/pair "
        "| engine % of limit | nt % of limit | state/pair |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        single = lambda k: "*" if r.get(k) == 1 else ""  # noqa: E731
        lines.append(
            f"| {r['arch']} | {r['resolution']} | {r['pairs']} | {r['engine_pairs_per_s']:.4g}{single('engine_repeats')} "
            f"| {r['nt_pairs_per_s']:.4g}{single('nt_repeats')} | {r['ratio']:.1f} | {r['flops_per_pair']:.3g} "
            f"| {r['bytes_per_pair']:.3g} | {100 * r['engine_fraction_of_limit']:.1f} "
            f"| {100 * r['nt_fraction_of_limit']:.1f} | {_fmt_bytes(r['state_bytes_per_pair'])} |"
        )
    lines.append("")
    lines.append("(* one timed call: it took longer than --max-seconds)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
