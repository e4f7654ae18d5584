"""Pairs per second of symflow's kernel engine and of plain neural-tangents, same run.

For each architecture and resolution: NNGP + NTK together, float32, random inputs
x1, x2 of n images each (n^2 pairs, no image shared, so no self-pairs), computed by

    engine  symflow.engine.kernel_fn(arch, hp, pair_batch=b^2)
    nt      nt.batch(stax kernel_fn, batch_size=b) (jitted inside nt.batch)

with the same n and the same b x b pairs per step, and checked against each other.
Compile time is excluded (one warm-up call first); a rate is the median over
--repeats timed repeats, each looping the call until --min-seconds have passed
(fewer repeats where calls are slow, see --budget-seconds). Rates are wall-clock
pairs per second; the ratio is also given in process CPU time, which a shared,
loaded machine disturbs less.

The machine's limits are measured in the same run: a 2048^3 float32 matmul
(peak flop rate) and y = x * c copies at array sizes from 256 kB to 256 MB
(bandwidth in cache and beyond). With the engine's operation and byte count per
pair (symflow.engine.cost_per_pair: every layer reading and writing its state
once), a rate becomes a fraction of the machine's limit,

    fraction = max(flops / peak_flops, bytes / bandwidth) * pairs_per_second,

bandwidth taken at the size of one tile of b x b pairs. nt's column uses the same
counts (the work either must do), not nt's own traffic.

See bench/README.md for the command. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# default sizes: resolution -> (n images per side, b images per side of a step)
SIZES = {4: (64, 32), 8: (32, 16), 16: (8, 8), 32: (2, 2)}
# FCN, VEC and LCN carry far less per pair: more pairs, for calls long enough to time
SMALL_STATE_SIZES = {4: (256, 128), 8: (128, 64), 16: (32, 32), 32: (32, 32)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8"])
    p.add_argument("--resolutions", nargs="+", type=int, default=[8, 16])
    p.add_argument("--n", type=int, default=None, help="images per side (default: by resolution, SIZES)")
    p.add_argument("--batch", type=int, default=None, help="images per side of one step (default: SIZES)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=0.5, help="each repeat loops the call this long")
    p.add_argument(
        "--budget-seconds",
        type=float,
        default=60.0,
        help="time allowed per (arch, resolution, implementation); fewer repeats where calls are slow",
    )
    p.add_argument(
        "--schedule",
        nargs="+",
        choices=["scan", "plain", "fused"],
        default=None,
        help="the engine's layer schedules to time, each against the same nt timing (default: the backend's)",
    )
    p.add_argument("--skip-nt", action="store_true", help="engine only")
    p.add_argument("--threads", type=int, default=None, help="XLA CPU threads (default: all)")
    p.add_argument("--csv", default="bench/results/kernel_bench.csv")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def cpu_seconds() -> float:
    """CPU time of this process (all its threads): steadier than wall time on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, *args, repeats, min_seconds, budget_seconds):
    """(median wall s per call, median CPU s per call, repeats done, first call wall s).

    The first call compiles and is not timed; if one call takes longer than
    budget_seconds / repeats, fewer repeats are done (at least one).
    """
    t0 = time.perf_counter()
    block(fn(*args))
    first = time.perf_counter() - t0
    walls, cpus = [], []
    t_start = time.perf_counter()
    while len(walls) < repeats:
        calls, t0, c0 = 0, time.perf_counter(), cpu_seconds()
        while True:
            block(fn(*args))
            calls += 1
            el = time.perf_counter() - t0
            if el >= min_seconds:
                break
        walls.append(el / calls)
        cpus.append((cpu_seconds() - c0) / calls)
        if time.perf_counter() - t_start + walls[-1] * calls > budget_seconds:
            break
    return statistics.median(walls), statistics.median(cpus), len(walls), first


def block(out):
    import jax

    jax.block_until_ready(out)
    for o in out:
        np.asarray(o)
    return out


COPY_SIZES = (1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 28)  # bytes: L2, L3, beyond


def machine_limits(repeats=7):
    """(peak float32 flop/s of a big matmul, {bytes: copy bandwidth in bytes/s at that array size}).

    Bandwidth counts bytes read + written by y = x * c over an array of that size,
    best of several runs; small sizes stay in cache, the largest (256 MiB) does not.
    """
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

    cp = jax.jit(lambda x: x * 1.0000001)  # read + write, not elided
    bandwidth = {}
    for size in COPY_SIZES:
        b = jnp.ones((size // 4,), jnp.float32)
        cp(b).block_until_ready()
        inner = max(1, (1 << 24) // size)  # enough work per timing for small arrays
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(inner):
                out = cp(b)
            out.block_until_ready()
            ts.append((time.perf_counter() - t0) / inner)
        bandwidth[size] = 2 * size / min(ts)
    return flops, bandwidth


def bandwidth_at(bandwidth: dict, working_set: float) -> float:
    """The copy bandwidth measured at the smallest size holding `working_set` bytes."""
    for size in sorted(bandwidth):
        if size >= working_set:
            return bandwidth[size]
    return bandwidth[max(bandwidth)]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        from symflow.runtime import configure_jax

        configure_jax(threads=args.threads)
    import jax
    import jax.numpy as jnp

    from symflow._nt import nt
    from symflow.architectures import ARCHITECTURES, ModelHP
    from symflow.engine import cost_per_pair, default_schedule, kernel_fn, state_bytes_per_pair

    hp = ModelHP()
    peak_flops, bandwidths = machine_limits()
    print(
        f"machine: {os.cpu_count()} CPUs, jax {jax.__version__} on {jax.default_backend()}; "
        f"matmul {peak_flops / 1e9:.1f} GFLOP/s, copy "
        + ", ".join(f"{_fmt_bytes(k)}: {v / 1e9:.1f} GB/s" for k, v in bandwidths.items()),
        flush=True,
    )

    rows = []
    rng = np.random.default_rng(args.seed)
    for res in args.resolutions:
        for arch in args.archs:
            a = ARCHITECTURES.get(arch)
            try:
                a.check_resolution(res)
            except ValueError:
                continue
            small = not a.spatial or arch in ("VEC", "LCN")
            n, b = (SMALL_STATE_SIZES if small else SIZES).get(res, (2, 2))
            n, b = args.n or n, args.batch or b
            b = min(b, n)
            if n % b:
                raise SystemExit(f"--n {n} must be a multiple of --batch {b}")
            x1 = jnp.asarray(rng.standard_normal((n, res, res, 3)), jnp.float32)
            x2 = jnp.asarray(rng.standard_normal((n, res, res, 3)), jnp.float32)
            pairs = n * n
            cost = cost_per_pair(arch, hp, (res, res, 3), 4)
            state = state_bytes_per_pair(arch, hp, (res, res, 3), 4)
            # the engine's working set: one tile of b x b pairs
            bandwidth = bandwidth_at(bandwidths, state * b * b)
            lower = max(cost["flops"] / peak_flops, cost["bytes"] / bandwidth)  # seconds per pair

            nt_row = {}
            if not args.skip_nt:
                kf = a.stax(hp)[2]
                ntf = nt.batch(kf, batch_size=b, device_count=0)
                ntf2 = lambda x, y: ntf(x, y, ("nngp", "ntk"))  # noqa: E731
                t_n, cpu_n, rep_n, c_n = timed(
                    ntf2, x1, x2, repeats=args.repeats, min_seconds=args.min_seconds, budget_seconds=args.budget_seconds
                )
                kn = block(ntf2(x1, x2))
                nt_row = dict(nt_pairs_per_s=pairs / t_n, nt_pairs_per_cpu_s=pairs / cpu_n, nt_repeats=rep_n,
                              nt_first_call_s=c_n, nt_fraction_of_limit=lower * pairs / t_n)  # fmt: skip
            for schedule in args.schedule or [default_schedule(arch)]:
                eng = kernel_fn(arch, hp, pair_batch=b * b, schedule=schedule)
                t_e, cpu_e, rep_e, c_e = timed(
                    eng, x1, x2, repeats=args.repeats, min_seconds=args.min_seconds, budget_seconds=args.budget_seconds
                )
                row = dict(
                    arch=arch,
                    resolution=res,
                    schedule=schedule,
                    n=n,
                    batch=b,
                    pairs=pairs,
                    engine_pairs_per_s=pairs / t_e,
                    engine_pairs_per_cpu_s=pairs / cpu_e,
                    engine_repeats=rep_e,
                    engine_first_call_s=c_e,
                    nt_pairs_per_s=float("nan"),
                    nt_pairs_per_cpu_s=float("nan"),
                    nt_repeats=0,
                    nt_first_call_s=float("nan"),
                    ratio=float("nan"),
                    ratio_cpu=float("nan"),
                    flops_per_pair=cost["flops"],
                    bytes_per_pair=cost["bytes"],
                    engine_fraction_of_limit=lower * pairs / t_e,
                    nt_fraction_of_limit=float("nan"),
                    state_bytes_per_pair=state,
                    peak_gflops=peak_flops / 1e9,
                    bandwidth_gbs=bandwidth / 1e9,
                    dram_bandwidth_gbs=bandwidths[max(bandwidths)] / 1e9,
                )
                if nt_row:
                    # the two must agree (off-diagonal pairs: no self-pair cancellation)
                    ke = block(eng(x1, x2))
                    err = max(
                        float(np.max(np.abs(np.asarray(u) - np.asarray(v)) / np.abs(np.asarray(v))))
                        for u, v in zip(ke, kn)
                    )
                    row.update(nt_row, ratio=t_n / t_e, ratio_cpu=cpu_n / cpu_e, max_rel_diff=err)
                rows.append(row)
                write_csv(args.csv, rows)  # after every case: a run cut short keeps what it measured
                print(
                    f"{arch:5s} R={res:2d} n={n} b={b} {schedule:8s}: engine {row['engine_pairs_per_s']:10.1f} pairs/s, "
                    f"nt {row['nt_pairs_per_s']:10.1f} pairs/s, ratio {row['ratio']:6.1f}",
                    flush=True,
                )

    print(f"\nwrote {args.csv}\n")
    print(markdown(rows, peak_flops, bandwidths))
    return 0


def write_csv(path, rows: list[dict]) -> None:
    """Every row so far, with the union of their columns (rows without nt lack max_rel_diff)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, keys)
        w.writeheader()
        w.writerows(rows)


def _fmt_bytes(x: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if x < 1000:
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1000
    return f"{x:.1f} TB"


def markdown(rows, peak_flops, bandwidths) -> str:
    copies = ", ".join(f"{_fmt_bytes(k)} {v / 1e9:.1f}" for k, v in bandwidths.items())
    lines = [
        f"machine limits (same run): matmul {peak_flops / 1e9:.1f} GFLOP/s; copy bandwidth GB/s by array size: {copies}",
        "",
        "| arch | R | schedule | pairs | engine pairs/s | nt pairs/s | engine/nt | engine/nt (CPU time) "
        "| flop/pair | byte/pair | GB/s used | engine % of limit | nt % of limit | state/pair | repeats e/nt |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arch']} | {r['resolution']} | {r['schedule']} | {r['pairs']} | {r['engine_pairs_per_s']:.4g} "
            f"| {r['nt_pairs_per_s']:.4g} | {r['ratio']:.1f} | {r['ratio_cpu']:.1f} | {r['flops_per_pair']:.3g} "
            f"| {r['bytes_per_pair']:.3g} | {r['bandwidth_gbs']:.1f} | {100 * r['engine_fraction_of_limit']:.1f} "
            f"| {100 * r['nt_fraction_of_limit']:.2f} | {_fmt_bytes(r['state_bytes_per_pair'])} "
            f"| {r['engine_repeats']}/{r['nt_repeats']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
