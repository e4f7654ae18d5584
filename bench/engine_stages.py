"""Where the engine's time goes: each stage of a layer timed on its own, per state entry.

    PYTHONPATH=. python bench/engine_stages.py [--arch GAP] [--resolution 8] [--batch 16]

For one tile of b x b pairs (random float32 inputs) it times, in process CPU time
(median of --repeats), the stages of symflow.engine's tile function as separate
jitted calls on the tile's real state:

    rows      box filter over pixel rows of K~ and of T~ + K~   (one fused loop)
    cols      box filter over pixel columns, + bias              (one fused loop)
    relu      the arc-cosine maps with their variance broadcasts
    copy      y = x * c over K and T (the memory floor of one pass)
    layer     (tile at depth 8 - tile at depth 2) / 6: a whole layer inside the scan
    fixed     tile at depth 2 - 2 layers: input covariance, readout, loop overhead
    sides     the per-image factors (variances, shifted inputs) of both sides

and prints ns per state entry (an entry: one K value and one T value of one pair).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import resource
import statistics

import numpy as np


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, *args, repeats):
    import jax

    jax.block_until_ready(fn(*args))
    ts = []
    for _ in range(repeats):
        c = cpu()
        jax.block_until_ready(fn(*args))
        ts.append(cpu() - c)
    return statistics.median(ts)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="GAP")
    p.add_argument("--resolution", type=int, default=8)
    p.add_argument("--batch", type=int, default=16, help="images per side of the tile")
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp

    from symflow import engine, engine_core
    from symflow.architectures import ModelHP

    r, b = args.resolution, args.batch
    rng = np.random.default_rng(0)
    x1 = jnp.asarray(rng.standard_normal((b, r, r, 3)), jnp.float32)
    x2 = jnp.asarray(rng.standard_normal((b, r, r, 3)), jnp.float32)
    recursion = engine_core.recursion_of(args.arch)
    hp = ModelHP()
    layout = engine_core.Layout(recursion, hp, (r, r, 3))
    entries = layout.entries * b * b
    f = layout.f

    side1, side2, tile, _ = engine._compiled(recursion, hp, (r, r, 3), engine.default_schedule(args.arch))
    t_sides = timed(lambda a, c: (side1(a), side2(c)), x1, x2, repeats=args.repeats)
    s1, s2 = side1(x1), side2(x2)
    k = layout.first(s1[0], s2[0])
    kt, tt = engine_core.relu(k, k, s1[1][0] * s2[1][0], s1[2][0] * s2[2][0], layout.w2f, jnp)
    spatial = recursion.kind != "fcn"

    rows = jax.jit(lambda kt, tt: (engine_core.box(kt, (0,), f, jnp), engine_core.box(tt + kt, (0,), f, jnp)))
    cols = jax.jit(lambda a, u: (engine_core.box(a, (1,), f, jnp) + 0.01, engine_core.box(u, (1,), f, jnp) + 0.01))
    relu = jax.jit(lambda k, t, a, c, d, e: engine_core.relu(k, t, a * c, d * e, 0.5, jnp))
    copy = jax.jit(lambda k, t: (k * 1.0001, t * 1.0001))
    out = {}
    if spatial:
        out["rows"] = timed(rows, kt, tt, repeats=args.repeats)
        out["cols"] = timed(cols, kt, tt, repeats=args.repeats)
    out["relu"] = timed(relu, k, k, s1[1][1], s2[1][1], s1[2][1], s2[2][1], repeats=args.repeats)
    out["copy"] = timed(copy, k, k, repeats=args.repeats)
    times = {}
    for depth in (2, 8):
        h = ModelHP(depth=depth)
        _, _, tile_d, _ = engine._compiled(recursion, h, (r, r, 3), engine.default_schedule(args.arch))
        lay = engine_core.Layout(recursion, h, (r, r, 3))
        a = jax.jit(lambda x: lay.side(x, False))(x1)
        c = jax.jit(lambda x: lay.side(x, True))(x2)
        times[depth] = timed(tile_d, a, c, repeats=args.repeats)
    out["layer"] = (times[8] - times[2]) / 6
    out["fixed"] = times[2] - 2 * out["layer"]
    out["sides"] = t_sides
    print(
        f"{args.arch} at {r}x{r}, tile {b} x {b} pairs, {layout.entries} entries per pair, "
        f"depth-8 tile {times[8] * 1e3:.1f} ms CPU"
    )
    print("| stage | ns per entry (CPU) |\n|---|---|")
    for name, t in out.items():
        print(f"| {name} | {t / entries * 1e9:.2f} |")


if __name__ == "__main__":
    main()
