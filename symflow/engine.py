"""Fast infinite-width NNGP and NTK kernels of the paper's ReLU architectures.

symflow's own implementation of the kernel recursions that neural-tangents'
``stax`` ``kernel_fn`` evaluates for the registered architectures whose registration
names an engine recursion (``Architecture.engine_recursion``: FCN, LCN, VEC, GAP,
LAP4, LAP8; symflow.architectures), jitted and batched over pairs, and
equal to ``kernel_fn(x1, x2, ('nngp', 'ntk'))`` of ``ARCHITECTURES.get(name).stax(hp)``
(tests/test_engine.py checks this to 1e-5 relative in float32 and 1e-10 in float64)::

    from symflow.engine import kernel_fn, supports
    fn = kernel_fn("GAP", ModelHP())
    nngp, ntk = fn(x1, x2)          # x1 (n1, H, W, C), x2 (n2, H, W, C) or None

The recursion (NTK parameterisation, as nt normalises it). Inputs enter as the
per-pixel-pair covariance x1[p] . x2[q] / C. A layer with filter F x F
(F = filter_size; FCN: a dense layer, F = 1 and no spatial axes) maps

    K'[p, q] = sigma_w^2 * mean_{delta in F x F} K~[p + delta, q + delta] + sigma_b^2
    T'[p, q] = sigma_w^2 * mean_{delta}          T~[p + delta, q + delta] + K'[p, q]

(circular shifts; K~, T~ are the post-ReLU kernels, the input covariance and
T~ = 0 before the first layer), and a ReLU, with v1[p], v2[q] the per-image
per-pixel variances, c = K / sqrt(v1 v2) = cos(theta),

    K~ = sqrt(v1 v2) (sin theta + (pi - theta) c) / (2 pi)
    T~ = T (pi - theta) / (2 pi)

The variances follow the same recursion on the diagonal (v~ = v / 2 after a ReLU),
per image, never per pair. The readout is a dense layer on the mean of K~ over
the pixel pairs that the pooling keeps:

    FCN       no spatial axes
    VEC, LCN  same pixel (p = q): Flatten of the spatial diagonal; the shared and
              the unshared (locally connected) convolutions have the same
              infinite-width kernel, and the same-pixel entries of a layer need
              only same-pixel entries of the layer below, so these two carry only
              the per-pixel covariance (n1, n2, H, W)
    GAP       all pixel pairs (global average pool)
    LAPk      pixel pairs in the same k x k block (average pool k x k, stride k,
              VALID, then Flatten of the pooled spatial diagonal)

Convolutional nets carry the spatial covariance in *relative coordinates*: entry
[p, q] at [p, d = q - p (mod H, W)]. A convolution shifts p and q together, so it
moves p alone, a separable F-tap box filter with wrapped edges over the p axes,
and never mixes offsets d: each d's recursion runs on its own, and only the
offsets the readout pools over are carried: d = 0 for VEC and LCN (the per-pixel
covariance), |d| < k per axis for LAPk (2k - 1 values per axis, or all H if fewer),
every d for GAP. The ReLU's variances enter as broadcasts v1[p] * v2[p + d],
gathered per image, never per pair.

How it runs (CPU measurements and the reasons: bench/README.md, the commit log).
A tile of b1 x b2 pairs is one jitted call: a scan over the layers whose body is
a row pass and a column pass of the box filter and the ReLU, each a single fused
loop over the state. XLA's CPU fusion left alone either recomputes the ReLU once
per filter tap (fusing it into the shifted reads) or materialises every shifted
copy; each box pass therefore sits in a branch of a lax.cond on a predicate XLA
cannot fold (l < 0, never true), whose outputs XLA must materialise. The input
covariance enters as a post-ReLU state with T~ = 0, so the first layer is the
same code as the others. The state keeps the pairs innermost
(p_h, p_w, a, d, b), so shifts move whole contiguous chunks and the ReLU
vectorises over b. The linearity of the convolution gives T' = box(T~ + K~) + b.

The ReLU's arc-cosine: in float32 the Abramowitz & Stegun 4.4.46 polynomial
(arccos(x) = sqrt(1 - x) * P7(x) on [0, 1], |error| <= 2e-8, arccos(-x) =
pi - arccos(x)); in float64 jnp.arccos (the polynomial's 2e-8 would miss the 1e-10
target there). The float32 kernels stay within 4e-7 (relative) of nt's float64
ones in the tests' cases (5e-7 at depth 20), against the 1e-5 asked. A cosine within 16 rounding errors of +-1 is taken as exactly
+-1 (theta = 0 or pi): for an image paired with itself the computed K and
sqrt(v1 v2) at p = q differ only by rounding, and theta = sqrt(2 (1 - c)) turns a
relative rounding error eps into an angle of sqrt(2 eps) and an NTK error of about
that over 2 pi. neural-tangents does not do this, and its K(x, x) diagonal carries
that error: up to 1e-3 relative in float32 and 1e-7 in float64 (measured; the
tests compare the diagonal against an extended-precision reference instead).

Memory. State per pair, in the input dtype (4 bytes in float32): K and T of E
entries each, E = 1 (FCN), H W (VEC, LCN), H W D (LAPk, D offsets) or (H W)^2
(GAP), and at the peak of a layer about three more arrays, so about 5 E x 4 bytes
per pair in float32:

    FCN 20 B; VEC/LCN 1.3 kB at 8x8, 5.1 kB at 16x16, 20 kB at 32x32;
    GAP 82 kB at 8x8, 1.3 MB at 16x16, 21 MB at 32x32;
    LAP4 63 kB at 8x8, 250 kB at 16x16, 1.0 MB at 32x32;
    LAP8 82 kB at 8x8, 1.2 MB at 16x16, 4.6 MB at 32x32

(``state_bytes_per_pair``). A call handles its n1 x n2 pairs in tiles of at most
``pair_batch`` pairs (default: about 16 MB of state per tile, i.e. up to 200
pairs of GAP at 8x8, 12 at 16x16, 1 at 32x32), so a B x B block of any size runs
in bounded memory; the second side's per-image factors add 2 depth / b1 of that.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

import numpy as np

from symflow import engine_fused
from symflow.architectures import ModelHP
from symflow.engine_core import Layout, Recursion, box, recursion_of, relu

# default memory for one tile's state (see the module docstring): on a CPU a tile that
# stays near the caches; an accelerator needs many pairs per call to fill its cores
_TILE_BYTES = 16 << 20
_TILE_BYTES_ACCELERATOR = 1 << 30

# how a tile runs its layers (_tile_fn): "scan" (conditionals as fusion boundaries) was tuned
# on CPU; "plain" has no conditionals, which a GPU may favour. The accelerator default stays
# "scan", the schedule measured on the H200 (2026-11-30), until bench/gpu_checks.sh has
# compared the schedules there (bench/gpu_report.py says which to set from its CSVs).
# "fused" (GAP and LAPk only; symflow/engine_fused.py): one Pallas kernel runs all the layers
# of a block of offsets on chip; opt-in until measured on a GPU.
# The defaults are per family: "dense" (FCN, VEC, LCN: no pixel pairs; "fused" is refused)
# and "spatial" (GAP, LAPk), so that each family can take the schedule that is fastest for it.
SCHEDULES = ("scan", "plain", "fused")
_SCHEDULE_CPU = {"dense": "scan", "spatial": "scan"}
_SCHEDULE_ACCELERATOR = {"dense": "scan", "spatial": "scan"}


def _family(recursion: Recursion) -> str:
    return "spatial" if recursion.kind == "spatial" else "dense"


def default_schedule(arch_name: str) -> str:
    """The layer schedule kernel_fn uses for `arch_name` on the current JAX backend."""
    import jax

    recursion = recursion_of(arch_name)
    if recursion is None:
        raise ValueError(f"the engine does not implement architecture {arch_name!r}")
    table = _SCHEDULE_CPU if jax.default_backend() == "cpu" else _SCHEDULE_ACCELERATOR
    return table[_family(recursion)]


def _tile_bytes() -> int:
    import jax

    return _TILE_BYTES if jax.default_backend() == "cpu" else _TILE_BYTES_ACCELERATOR


def supports(arch_name: str) -> bool:
    """Whether the engine computes `arch_name`'s kernels: its registration names an engine
    recursion (Architecture.engine_recursion; else neural-tangents computes them)."""
    return recursion_of(arch_name) is not None


def _tile_fn(layout: Layout, plain: bool = False):
    """(side1, side2) -> (nngp, ntk) for one tile of b1 x b2 pairs (to be jitted).

    A layer is the convolution, by linearity K = box(K~) + b and T = box(T~) + K =
    box(T~ + K~) + b, as a box filter over pixel rows, then one over pixel columns;
    then the ReLU. The carry is the post-ReLU state (K~, T~), scaled by the next
    layer's sigma_w^2 / F^2. Two ways to run the layers here (the schedules of SCHEDULES; the
    third, "fused", is symflow.engine_fused), equal values:

    "scan" (tuned on CPU): a scan over the layers. XLA's CPU fusion left alone either
    recomputes the ReLU once per filter tap or materialises every shifted copy. Each
    box pass therefore sits in a branch of a lax.cond on a predicate XLA cannot fold
    (l < 0, never true), whose outputs XLA must materialise: row pass, column pass,
    ReLU, one fused loop each (measured: 1.6x faster per layer than the same code
    without the boundaries, at 8x8 on CPU).

    "plain" (`plain=True`; for accelerators, to be measured there): the same scan without the
    conditionals, fused as XLA decides. On a GPU a conditional can cost a wait for
    the device (its branch index is read by the host), which a cheap tile (FCN, VEC)
    pays in full: 16 waits a call at depth 8 (bench/README.md, "On a GPU"). Straight-
    line layers are no alternative: XLA drops optimization barriers before fusion,
    and unrolled, the layers' shifted reads fuse into each other (measured on CPU:
    VEC at 8x8 50x slower than "scan", with or without barriers).
    """
    import jax.numpy as jnp
    from jax import lax

    hp = layout.hp
    wv, bv, w2f = hp.weight_variance, hp.bias_variance, layout.w2f
    f = layout.f
    spatial = layout.recursion.kind != "fcn"

    def rows(c):  # box over pixel rows of K~ and of T~ + K~
        kt, tt = c
        return (box(kt, (0,), f, jnp), box(tt + kt, (0,), f, jnp)) if spatial else (kt, tt + kt)

    def cols(c):  # box over pixel columns, + bias
        a, u = c
        if spatial:
            a, u = box(a, (1,), f, jnp), box(u, (1,), f, jnp)
        return a + bv, u + bv

    def keep(c):
        return c

    def tile(side1, side2):
        f1, i1, s1 = side1
        f2, i2, s2 = side2
        scales = jnp.asarray([w2f] * (hp.depth - 1) + [wv], f1.dtype)

        # the input covariance as a "post-ReLU" state with T~ = 0: the first convolution
        # then gives K = T = the first layer's pre-activation kernel
        k0 = layout.first(f1, f2)
        carry = (k0, jnp.zeros_like(k0))

        def layer(carry, xs):
            l, i1l, s1l, i2l, s2l, scale = xs
            if plain:
                k, t = cols(rows(carry))
            else:
                never = l < 0  # a predicate XLA cannot fold: the branches are fusion boundaries
                mid = lax.cond(never, keep, rows, carry)
                k, t = lax.cond(never, keep, cols, mid)
            return relu(k, t, i1l * i2l, s1l * s2l, scale, jnp), None

        (kt, tt), _ = lax.scan(layer, carry, (jnp.arange(hp.depth), i1, s1, i2, s2, scales))
        # readout: dense layer on the pooled kernel (the last ReLU's outputs carry its sigma_w^2)
        nngp = layout.readout(kt) + bv
        ntk = layout.readout(tt) + nngp
        return nngp, ntk

    return tile


_RELU_FLOPS = 37  # per entry, NNGP and NTK together (float32 path: polynomial arccos, 2 square roots)


def _entries(arch_name: str, hp: ModelHP, shape: tuple[int, int, int]) -> int:
    recursion = recursion_of(arch_name)
    if recursion is None:
        raise KeyError(f"the engine does not implement architecture {arch_name!r}")
    return Layout(recursion, hp, shape).entries


def cost_per_pair(arch_name: str, hp: ModelHP, shape: tuple[int, int, int], itemsize: int = 4) -> dict:
    """Operation and byte count of the recursion per pair, for a roofline estimate.

    flops: arithmetic per pair (a square root, compare or select counts as one);
    bytes: memory traffic if every layer read and wrote its NNGP and NTK state once.
    """
    h, w, c = shape
    e = _entries(arch_name, hp, shape)
    fcn = recursion_of(arch_name).kind == "fcn"
    taps = 0 if fcn else 2 * (hp.filter_size - 1)  # separable box filter, per array
    per_layer = _RELU_FLOPS + 2 * taps + 2  # ReLU, box on K and T, + bias, T += K
    first = 2 * h * w * c if fcn else 2 * c * hp.filter_size**2  # input covariance (patches)
    readout = 4
    flops = e * (first + hp.depth * per_layer + readout)
    nbytes = e * itemsize * (2 + 4 * hp.depth)
    return {"flops": int(flops), "bytes": int(nbytes), "entries": int(e)}


def state_bytes_per_pair(arch_name: str, hp: ModelHP, shape: tuple[int, int, int], itemsize: int = 4) -> int:
    """Peak working memory per pair, about: 5 arrays of the state (see the module docstring)."""
    return _STATE_ARRAYS * _entries(arch_name, hp, shape) * itemsize


_STATE_ARRAYS = 5


def kernel_fn(
    arch_name: str, hp: ModelHP, *, pair_batch: int | None = None, schedule: str | None = None
) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """fn(x1, x2=None) -> (nngp, ntk), numpy (n1, n2) in x1's dtype; equal to nt's stax kernel_fn.

    x1: (n1, H, W, C); x2: (n2, H, W, C) or None (x2 = x1: only the tiles on and
    above the diagonal are computed, the rest mirrored, so the result is exactly
    symmetric). Pairs are computed in tiles of at most `pair_batch` pairs (default:
    about _TILE_BYTES of state per tile on a CPU, _TILE_BYTES_ACCELERATOR on a GPU; see
    the module docstring). Products run at full float32 precision on every backend (a
    GPU would otherwise use TF32, ~1e-3 relative, for float32 matmuls). `schedule`: how a
    tile runs its layers, "scan" or "plain" (default: `default_schedule(arch_name)`; see _tile_fn),
    or, for GAP and LAPk only, "fused" (symflow.engine_fused: a Pallas kernel, through
    Pallas' interpreter on a CPU); the values agree to float rounding.
    """
    recursion = recursion_of(arch_name)
    if recursion is None:
        raise ValueError(f"the engine does not implement architecture {arch_name!r}")
    if hp.filter_size % 2 != 1 or hp.filter_size < 1:
        raise ValueError(f"the engine needs an odd filter_size, got {hp.filter_size}")
    if hp.depth < 1:
        raise ValueError(f"the engine needs depth >= 1, got {hp.depth}")
    if schedule is not None and schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    # resolved here, so that the tile budget below is the chosen schedule's
    schedule = schedule or default_schedule(arch_name)
    if schedule == "fused" and recursion.kind != "spatial":
        plain_schedules = tuple(x for x in SCHEDULES if x != "fused")
        raise ValueError(f"schedule must be one of {plain_schedules} for {arch_name}: 'fused' is for GAP and LAPk only")

    def fn(x1, x2=None):
        import jax.numpy as jnp

        x1 = jnp.asarray(x1)
        if not jnp.issubdtype(x1.dtype, jnp.floating):
            x1 = x1.astype(jnp.float32)
        symmetric = x2 is None
        x2 = x1 if symmetric else jnp.asarray(x2, dtype=x1.dtype)
        if x1.ndim != 4 or x2.ndim != 4 or x2.shape[1:] != x1.shape[1:]:
            raise ValueError(f"x1, x2 must be (n, H, W, C) with equal H, W, C; got {x1.shape}, {x2.shape}")
        n1, n2 = int(x1.shape[0]), int(x2.shape[0])
        shape = tuple(int(s) for s in x1.shape[1:])
        per_pair = _STATE_ARRAYS * Layout(recursion, hp, shape).entries * x1.dtype.itemsize
        if schedule == "fused":  # no state in device memory: the partial sums per pair
            per_pair = engine_fused.bytes_per_pair(Layout(recursion, hp, shape), x1.dtype.itemsize)
        budget = int(pair_batch) if pair_batch else max(1, _tile_bytes() // per_pair)
        b1, b2 = _tile(n1, n2, budget)
        if symmetric and b1 != b2:
            b1 = b2 = _split(n1, min(b1, b2))
        side1, side2, tile, whole = _compiled(recursion, hp, shape, schedule)
        if b1 == n1 and b2 == n2:  # one tile: one compiled call
            kn, kt = (np.asarray(a) for a in whole(x1, x2))
            return (_symmetrise(kn), _symmetrise(kt)) if symmetric else (kn, kt)
        starts1, starts2 = range(0, n1, b1), range(0, n2, b2)
        sides1 = [side1(_pad_rows(x1[i : i + b1], b1, jnp)) for i in starts1]
        out = {}
        for jj, j in enumerate(starts2):
            s2 = side2(_pad_rows(x2[j : j + b2], b2, jnp))
            for ii, i in enumerate(starts1):
                if symmetric and ii > jj:
                    continue
                out[ii, jj] = tile(sides1[ii], s2)
        nngp = np.empty((n1, n2), dtype=x1.dtype)
        ntk = np.empty((n1, n2), dtype=x1.dtype)
        for (ii, jj), (kn, kt) in out.items():
            i, j = starts1[ii], starts2[jj]
            ni, nj = min(b1, n1 - i), min(b2, n2 - j)
            kn, kt = np.asarray(kn)[:ni, :nj], np.asarray(kt)[:ni, :nj]
            if symmetric and ii == jj:
                kn, kt = _symmetrise(kn), _symmetrise(kt)
            nngp[i : i + ni, j : j + nj] = kn
            ntk[i : i + ni, j : j + nj] = kt
            if symmetric and ii < jj:
                nngp[j : j + nj, i : i + ni] = kn.T
                ntk[j : j + nj, i : i + ni] = kt.T
        return nngp, ntk

    return fn


_COMPILED: dict = {}


def _compiled(recursion: Recursion, hp: ModelHP, shape: tuple[int, int, int], schedule: str):
    """jitted (side1, side2, tile, whole) for one architecture recursion, hp, image shape and
    layer schedule.

    Shared by every kernel_fn of the same recursion (VEC and LCN share one); jax's own
    cache then keys each on the argument shapes and dtypes.
    """
    key = (recursion, hp, shape, schedule)
    if key not in _COMPILED:
        import jax

        layout = Layout(recursion, hp, shape)
        if schedule == "fused":
            _COMPILED[key] = engine_fused.compiled(layout)
        else:
            tile = _tile_fn(layout, plain=schedule == "plain")

            def whole(x1, x2):
                return tile(layout.side(x1, False), layout.side(x2, True))

            _COMPILED[key] = (
                jax.jit(partial(layout.side, second=False)),
                jax.jit(partial(layout.side, second=True)),
                jax.jit(tile),
                jax.jit(whole),
            )
    return _COMPILED[key]


def _tile(n1: int, n2: int, budget: int) -> tuple[int, int]:
    """Tile sizes (b1, b2) with b1 * b2 <= budget (about), about square, splitting n1 and n2 evenly."""
    if n1 * n2 <= budget:
        return n1, n2
    b2 = _split(n2, math.isqrt(budget))
    return _split(n1, budget // b2), b2


def _split(n: int, most: int) -> int:
    """A tile size for n rows, at most `most`: even tiles, a multiple of 8 where most >= 8.

    Rows are padded up to a whole number of tiles; even tiles keep that padding small,
    and multiples of 8 keep the ReLU's vector loop (over b2) whole.
    """
    most = max(1, min(n, most))
    if most >= 8:
        most -= most % 8
    tiles = -(-n // most)
    if tiles == 1:
        return n
    b = -(-n // tiles)
    return -(-b // 8) * 8 if most >= 8 else b


def _symmetrise(a: np.ndarray) -> np.ndarray:
    """The upper triangle mirrored: K(x, x) exactly symmetric (the two halves differ by rounding)."""
    return np.triu(a) + np.triu(a, 1).T


def _pad_rows(x, b, jnp):
    """x padded to b rows by repeating its first row (a real image: no zero variances)."""
    if x.shape[0] == b:
        return x
    return jnp.concatenate([x, jnp.broadcast_to(x[:1], (b - x.shape[0],) + x.shape[1:])], axis=0)
