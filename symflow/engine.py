"""Fast infinite-width NNGP and NTK kernels of the paper's ReLU architectures.

symflow's own implementation of the kernel recursions that neural-tangents'
``stax`` ``kernel_fn`` evaluates for the registered architectures (FCN, LCN, VEC,
GAP, LAP4, LAP8; symflow.architectures), jitted and batched over pairs, and
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
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from symflow.architectures import ARCHITECTURES, ModelHP

# Abramowitz & Stegun 4.4.46: arccos(x) = sqrt(1 - x) * sum_k A_k x^k on [0, 1].
_AS_ACOS = (
    1.5707963050,
    -0.2145988016,
    0.0889789874,
    -0.0501743046,
    0.0308918810,
    -0.0170881256,
    0.0066700901,
    -0.0012624911,
)

# |c| >= 1 - _SNAP_ULPS * eps is taken as |c| = 1 (see the module docstring)
_SNAP_ULPS = 16

# default memory for one tile's state (see the module docstring): on a CPU a tile that
# stays near the caches; an accelerator needs many pairs per call to fill its cores
_TILE_BYTES = 16 << 20
_TILE_BYTES_ACCELERATOR = 1 << 30

# how a tile runs its layers (_tile_fn): "scan" (conditionals as fusion boundaries) was tuned
# on CPU; "plain" has no conditionals, which a GPU may favour. The accelerator default stays
# "scan", the layout measured on the H200 (2026-11-30), until bench/gpu_checks.sh has
# compared the layouts there (bench/gpu_report.py says which to set from its CSVs).
# "fused" (GAP and LAPk only; symflow/engine_fused.py): one Pallas kernel runs all the layers
# of a block of offsets on chip; opt-in until measured on a GPU.
# The defaults are per family: "dense" (FCN, VEC, LCN: no pixel pairs; "fused" is refused)
# and "spatial" (GAP, LAPk), so that each family can take the layout that is fastest for it.
LAYERS = ("scan", "plain", "fused")
_LAYERS_CPU = {"dense": "scan", "spatial": "scan"}
_LAYERS_ACCELERATOR = {"dense": "scan", "spatial": "scan"}


def _family(recursion: "_Recursion") -> str:
    return "spatial" if recursion.kind == "spatial" else "dense"


def default_layers(arch_name: str) -> str:
    """The layer layout kernel_fn uses for `arch_name` on the current JAX backend."""
    import jax

    recursion = _recursion(arch_name)
    if recursion is None:
        raise ValueError(f"the engine does not implement architecture {arch_name!r}")
    table = _LAYERS_CPU if jax.default_backend() == "cpu" else _LAYERS_ACCELERATOR
    return table[_family(recursion)]


def _tile_bytes() -> int:
    import jax

    return _TILE_BYTES if jax.default_backend() == "cpu" else _TILE_BYTES_ACCELERATOR


@dataclass(frozen=True)
class _Recursion:
    kind: str  # "fcn", "pixel" (offset d = 0 only) or "spatial" (offsets the pooling needs)
    window: int | None = None  # spatial: pooling window (None: global average pool)


_PLANS = {
    "FCN": _Recursion("fcn"),
    "VEC": _Recursion("pixel"),
    "LCN": _Recursion("pixel"),
    "GAP": _Recursion("spatial"),
}


def _recursion(arch_name: str) -> _Recursion | None:
    if arch_name in _PLANS:
        return _PLANS[arch_name]
    if arch_name.startswith("LAP") and arch_name in ARCHITECTURES:
        return _Recursion("spatial", int(ARCHITECTURES.get(arch_name).meta["window"]))
    return None


def supports(arch_name: str) -> bool:
    """Whether the engine computes `arch_name`'s kernels (else use neural-tangents)."""
    return _recursion(arch_name) is not None


# -- building blocks -------------------------------------------------------------


def _arccos(x, jnp):
    """arccos on [0, 1]."""
    if x.dtype == jnp.float64:
        return jnp.arccos(x)
    p = _AS_ACOS[-1]
    for a in _AS_ACOS[-2::-1]:
        p = p * x + a
    # sqrt((1 - x) p^2) rather than sqrt(1 - x) p: the square root ends the expression, so
    # XLA materialises it once instead of re-deriving the polynomial in each consumer
    return jnp.sqrt((1.0 - x) * (p * p))


def _relu(k, t, inv_s, s, w2f, jnp):
    """ReLU arc-cosine maps; outputs scaled by w2f = sigma_w^2 / F^2 (the next layer's factor).

    k, t: NNGP and NTK before the ReLU; inv_s, s: broadcastable 1 / sqrt(v1 v2), sqrt(v1 v2).
    """
    eps = jnp.finfo(k.dtype).eps
    c = k * inv_s
    x = jnp.minimum(jnp.abs(c), 1.0)
    x = jnp.where(x >= 1.0 - _SNAP_ULPS * eps, 1.0, x)
    acos = _arccos(x, jnp)
    theta = jnp.where(c < 0, math.pi - acos, acos)  # arccos(c)
    sin = jnp.sqrt((1.0 - x) * (1.0 + x))
    pt = (math.pi - theta) * (w2f / (2 * math.pi))  # (pi - theta) / (2 pi), times w2f
    k_out = (w2f / (2 * math.pi)) * sin * s + pt * k
    t_out = None if t is None else pt * t
    return k_out, t_out


def _box(a, axes, f, jnp):
    """Sum over an f-tap window centred on each index, wrapped, along each of `axes`."""
    if f == 1:
        return a
    r = f // 2
    for ax in axes:
        acc = a
        for s in range(1, r + 1):
            acc = acc + jnp.roll(a, s, axis=ax) + jnp.roll(a, -s, axis=ax)
        a = acc
    return a


def _inv_sqrt(v, jnp):
    return jnp.where(v > 0, 1.0 / jnp.sqrt(jnp.where(v > 0, v, 1.0)), 0.0)


def _offsets(n: int, reach: int | None) -> np.ndarray:
    """Relative offsets d (mod n) along an axis of size n with |d| <= reach (None: all)."""
    if reach is None or 2 * reach + 1 >= n:
        return np.arange(n)
    return np.arange(-reach, reach + 1) % n


class _Layout:
    """The state array of one tile, and the per-image factors that broadcast against it.

    FCN: (b1, b2). Convolutional nets: (Ph, Pw, b1, D, b2), the entry for pixel pair
    (p, q = p + d) of images (a, b) at [p, a, d, b], for d in a fixed set of relative
    offsets (flattened). A convolution shifts p and q together, so it never changes
    d: every offset's recursion runs on its own, and only the offsets the readout
    pools over are carried,

        VEC, LCN  d = 0                          (D = 1)
        LAPk      |d_h|, |d_w| <= k - 1 (mod H, W)  (D = min(2k - 1, H) * min(2k - 1, W))
        GAP       every d                        (D = H W)

    The convolution is then an F-tap wrapped box filter over axes 0 and 1 (pixel
    rows and columns), which move contiguous chunks of b1 D b2 entries; the ReLU
    vectorises over b2.
    """

    def __init__(self, recursion: _Recursion, hp: ModelHP, shape: tuple[int, int, int]):
        self.recursion, self.hp, self.shape = recursion, hp, shape
        h, w, c = shape
        self.f = 1 if recursion.kind == "fcn" else hp.filter_size
        self.w2f = hp.weight_variance / self.f**2  # sigma_w^2 / filter size: the layer's factor on box sums
        if recursion.kind == "fcn":
            return
        if recursion.kind == "pixel":
            reach = 0
        elif recursion.window is None:
            reach = None
        else:
            if h % recursion.window or w % recursion.window:
                raise ValueError(f"LAP{recursion.window} needs a resolution divisible by {recursion.window}, got {h}x{w}")
            reach = recursion.window - 1
        dh, dw = _offsets(h, reach), _offsets(w, reach)
        self.n_offsets = len(dh) * len(dw)
        # gather indices: [p_h, j] -> (p_h + dh[j]) mod H, likewise for w
        self.gh = (np.arange(h)[:, None] + dh[None, :]) % h
        self.gw = (np.arange(w)[:, None] + dw[None, :]) % w
        # readout weights over [p, d]: which pairs (p, p + d) the pooling keeps, / normalisation
        if recursion.kind == "pixel":
            mask_h, mask_w, norm = np.ones((h, 1)), np.ones((w, 1)), h * w
        elif recursion.window is None:
            mask_h, mask_w, norm = np.ones((h, len(dh))), np.ones((w, len(dw))), (h * w) ** 2
        else:
            k = recursion.window
            mask_h = (np.arange(h)[:, None] // k == self.gh // k).astype(np.float64)
            mask_w = (np.arange(w)[:, None] // k == self.gw // k).astype(np.float64)
            norm = h * w * k * k
        self.readout_weights = (mask_h[:, None, :, None] * mask_w[None, :, None, :]).reshape(
            h, w, self.n_offsets
        ) / float(norm)
        self.uniform_readout = bool(np.all(self.readout_weights == self.readout_weights.flat[0]))

    @property
    def entries(self) -> int:
        """State entries per pair (per array)."""
        h, w, _ = self.shape
        return 1 if self.recursion.kind == "fcn" else h * w * self.n_offsets

    # -- per image ---------------------------------------------------------------

    def side(self, x, second: bool):
        """Per-image factors of one side of the pairs: (features, inv_sqrt_v, sqrt_v).

        features: what the first layer's covariance contracts (FCN: the flat image;
        else the image, on the second side shifted by d: x[b, p + d], (H, W, D, n, C));
        inv_sqrt_v, sqrt_v: (depth, ...) per-layer variances, broadcastable against
        the state (the second side's shifted by d).
        """
        import jax.numpy as jnp

        hp, (h, w, c) = self.hp, self.shape
        n = x.shape[0]
        if self.recursion.kind == "fcn":
            feat = x.reshape(n, h * w * c)
            v = _variances(jnp.sum(feat * feat, axis=1) / (h * w * c), hp, (), jnp)
            shape = (hp.depth, 1, n) if second else (hp.depth, n, 1)
            return feat, _inv_sqrt(v, jnp).reshape(shape), jnp.sqrt(v).reshape(shape)
        feat = x  # (n, H, W, C)
        v = _variances(jnp.sum(x * x, axis=-1) / c, hp, (1, 2), jnp)  # (depth, n, H, W)
        v = jnp.moveaxis(v, 1, -1)  # (depth, H, W, n)
        if not second:
            shape = (hp.depth, h, w, n, 1, 1)
            return feat, _inv_sqrt(v, jnp).reshape(shape), jnp.sqrt(v).reshape(shape)
        gh, gw = self.gh[:, None, :, None], self.gw[None, :, None, :]
        shape = (hp.depth, h, w, 1, self.n_offsets, n)
        v = v[:, gh, gw].reshape(shape)  # [l, p, d, b] = v[l, p + d, b]
        feat = jnp.moveaxis(feat[:, gh, gw], 0, -2)  # (H, W, Dh, Dw, n, C): x[b, p + d]
        feat = feat.reshape(h, w, self.n_offsets, n, feat.shape[-1])
        return feat, _inv_sqrt(v, jnp), jnp.sqrt(v)

    # -- per pair ----------------------------------------------------------------

    def first(self, f1, f2):
        """The input covariance x1[p] . x2[p + d] / C, times the first layer's sigma_w^2 / F^2.

        Run through a layer's convolution with T~ = 0 it gives the first layer's K and T.
        """
        import jax.numpy as jnp

        hp, (h, w, c) = self.hp, self.shape
        if self.recursion.kind == "fcn":
            return jnp.matmul(f1, f2.T, precision="highest") * (hp.weight_variance / (h * w * c))
        return jnp.einsum("ahwc,hwdbc->hwadb", f1, f2, precision="highest") * (self.w2f / c)

    def readout(self, a):
        """Pooling + flatten of the post-ReLU state: (b1, b2)."""
        import jax.numpy as jnp

        if self.recursion.kind == "fcn":
            return a
        if self.uniform_readout:
            return jnp.sum(a, axis=(0, 1, 3)) * self.readout_weights.flat[0]
        return jnp.einsum("hwadb,hwd->ab", a, jnp.asarray(self.readout_weights, a.dtype), precision="highest")


def _tile_fn(layout: _Layout, plain: bool = False):
    """(side1, side2) -> (nngp, ntk) for one tile of b1 x b2 pairs (to be jitted).

    A layer is the convolution, by linearity K = box(K~) + b and T = box(T~) + K =
    box(T~ + K~) + b, as a box filter over pixel rows, then one over pixel columns;
    then the ReLU. The carry is the post-ReLU state (K~, T~), scaled by the next
    layer's sigma_w^2 / F^2. Two ways to run the layers here (the layouts of LAYERS; the
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
        return (_box(kt, (0,), f, jnp), _box(tt + kt, (0,), f, jnp)) if spatial else (kt, tt + kt)

    def cols(c):  # box over pixel columns, + bias
        a, u = c
        if spatial:
            a, u = _box(a, (1,), f, jnp), _box(u, (1,), f, jnp)
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
            return _relu(k, t, i1l * i2l, s1l * s2l, scale, jnp), None

        (kt, tt), _ = lax.scan(layer, carry, (jnp.arange(hp.depth), i1, s1, i2, s2, scales))
        # readout: dense layer on the pooled kernel (the last ReLU's outputs carry its sigma_w^2)
        nngp = layout.readout(kt) + bv
        ntk = layout.readout(tt) + nngp
        return nngp, ntk

    return tile


def _variances(v0, hp, axes, jnp):
    """Per-image variances before each ReLU: (depth,) + v0.shape.

    A scan, not an unrolled loop: unrolled, XLA fuses the layers' shifted reads
    into one expression that recomputes each layer once per filter tap (9^depth).
    """
    from jax import lax

    f = hp.filter_size if axes else 1

    def step(v, _):
        v = hp.weight_variance / f**2 * _box(v, axes, f, jnp) + hp.bias_variance
        return v / 2, v

    _, vs = lax.scan(step, v0, None, length=hp.depth)
    return vs


_RELU_FLOPS = 37  # per entry, NNGP and NTK together (float32 path: polynomial arccos, 2 square roots)


def _entries(arch_name: str, hp: ModelHP, shape: tuple[int, int, int]) -> int:
    recursion = _recursion(arch_name)
    if recursion is None:
        raise KeyError(f"the engine does not implement architecture {arch_name!r}")
    return _Layout(recursion, hp, shape).entries


def cost_per_pair(arch_name: str, hp: ModelHP, shape: tuple[int, int, int], itemsize: int = 4) -> dict:
    """Operation and byte count of the recursion per pair, for a roofline estimate.

    flops: arithmetic per pair (a square root, compare or select counts as one);
    bytes: memory traffic if every layer read and wrote its NNGP and NTK state once.
    """
    h, w, c = shape
    e = _entries(arch_name, hp, shape)
    fcn = _recursion(arch_name).kind == "fcn"
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
    arch_name: str, hp: ModelHP, *, pair_batch: int | None = None, layers: str | None = None
) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """fn(x1, x2=None) -> (nngp, ntk), numpy (n1, n2) in x1's dtype; equal to nt's stax kernel_fn.

    x1: (n1, H, W, C); x2: (n2, H, W, C) or None (x2 = x1: only the tiles on and
    above the diagonal are computed, the rest mirrored, so the result is exactly
    symmetric). Pairs are computed in tiles of at most `pair_batch` pairs (default:
    about _TILE_BYTES of state per tile on a CPU, _TILE_BYTES_ACCELERATOR on a GPU; see
    the module docstring). Products run at full float32 precision on every backend (a
    GPU would otherwise use TF32, ~1e-3 relative, for float32 matmuls). `layers`: how a
    tile runs its layers, "scan" or "plain" (default: `default_layers(arch_name)`; see _tile_fn),
    or, for GAP and LAPk only, "fused" (symflow.engine_fused: a Pallas kernel, through
    Pallas' interpreter on a CPU); the values agree to float rounding.
    """
    recursion = _recursion(arch_name)
    if recursion is None:
        raise ValueError(f"the engine does not implement architecture {arch_name!r}")
    if hp.filter_size % 2 != 1 or hp.filter_size < 1:
        raise ValueError(f"the engine needs an odd filter_size, got {hp.filter_size}")
    if hp.depth < 1:
        raise ValueError(f"the engine needs depth >= 1, got {hp.depth}")
    if layers is not None and layers not in LAYERS:
        raise ValueError(f"layers must be one of {LAYERS}, got {layers!r}")
    # resolved here, so that the tile budget below is the chosen layout's
    layers = layers or default_layers(arch_name)
    if layers == "fused" and recursion.kind != "spatial":
        plain_layers = tuple(x for x in LAYERS if x != "fused")
        raise ValueError(f"layers must be one of {plain_layers} for {arch_name}: 'fused' is for GAP and LAPk only")

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
        per_pair = _STATE_ARRAYS * _Layout(recursion, hp, shape).entries * x1.dtype.itemsize
        if layers == "fused":  # no state in device memory: the partial sums per pair
            from symflow import engine_fused

            per_pair = engine_fused.bytes_per_pair(_Layout(recursion, hp, shape), x1.dtype.itemsize)
        budget = int(pair_batch) if pair_batch else max(1, _tile_bytes() // per_pair)
        b1, b2 = _tile(n1, n2, budget)
        if symmetric and b1 != b2:
            b1 = b2 = _split(n1, min(b1, b2))
        side1, side2, tile, whole = _compiled(recursion, hp, shape, layers)
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


def _compiled(recursion: _Recursion, hp: ModelHP, shape: tuple[int, int, int], layers: str):
    """jitted (side1, side2, tile, whole) for one architecture recursion, hp, image shape and
    layer layout.

    Shared by every kernel_fn of the same recursion (VEC and LCN share one); jax's own
    cache then keys each on the argument shapes and dtypes.
    """
    key = (recursion, hp, shape, layers)
    if key not in _COMPILED:
        import jax

        layout = _Layout(recursion, hp, shape)
        if layers == "fused":
            from symflow import engine_fused

            _COMPILED[key] = engine_fused.compiled(layout)
        else:
            tile = _tile_fn(layout, plain=layers == "plain")

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
