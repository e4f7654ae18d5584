"""What both implementations of symflow.engine compute with: the recursion an architecture runs,
the state's layout, and the elementwise maths of a layer (the ReLU's arc-cosine maps, the
box filter, the per-image variances).

symflow.engine (the "scan" and "plain" schedules) and symflow.engine_fused (the "fused"
Pallas kernel) both import this module, and it imports neither: the maths is written
once, and the two implementations run the same operations in the same order. The recursion
itself, the layout and the float32 arc-cosine are described in symflow.engine's
docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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

# |c| >= 1 - _SNAP_ULPS * eps is taken as |c| = 1 (see symflow.engine's docstring)
_SNAP_ULPS = 16


@dataclass(frozen=True)
class Recursion:
    """Which of the engine's recursions computes an architecture (symflow.engine's docstring).

    kind: "fcn" (dense layers, no spatial axes), "pixel" (a flatten readout: offset d = 0
    only) or "spatial" (a pooling readout: the offsets the pooling needs); window: for
    "spatial", the k of a k x k average pool (None: global average pool).
    """

    kind: str
    window: int | None = None


def recursion_of(arch_name: str) -> Recursion | None:
    """The engine recursion the registry names for `arch_name`, or None (unknown, or no
    engine recursion: neural-tangents computes its kernels).

    Architecture.engine_recursion names the kind; a "spatial" one pools over
    meta["window"] x meta["window"] blocks where its meta has a window, else globally.
    """
    if arch_name not in ARCHITECTURES:
        return None
    arch = ARCHITECTURES.get(arch_name)
    if arch.engine_recursion is None:
        return None
    window = arch.meta.get("window") if arch.engine_recursion == "spatial" else None
    return Recursion(arch.engine_recursion, None if window is None else int(window))


# -- building blocks -------------------------------------------------------------


def arccos(x, jnp):
    """arccos on [0, 1]."""
    if x.dtype == jnp.float64:
        return jnp.arccos(x)
    p = _AS_ACOS[-1]
    for a in _AS_ACOS[-2::-1]:
        p = p * x + a
    # sqrt((1 - x) p^2) rather than sqrt(1 - x) p: the square root ends the expression, so
    # XLA materialises it once instead of re-deriving the polynomial in each consumer
    return jnp.sqrt((1.0 - x) * (p * p))


def relu(k, t, inv_s, s, w2f, jnp):
    """ReLU arc-cosine maps; outputs scaled by w2f = sigma_w^2 / F^2 (the next layer's factor).

    k, t: NNGP and NTK before the ReLU; inv_s, s: broadcastable 1 / sqrt(v1 v2), sqrt(v1 v2).
    """
    eps = jnp.finfo(k.dtype).eps
    c = k * inv_s
    x = jnp.minimum(jnp.abs(c), 1.0)
    x = jnp.where(x >= 1.0 - _SNAP_ULPS * eps, 1.0, x)
    acos = arccos(x, jnp)
    theta = jnp.where(c < 0, math.pi - acos, acos)  # arccos(c)
    sin = jnp.sqrt((1.0 - x) * (1.0 + x))
    pt = (math.pi - theta) * (w2f / (2 * math.pi))  # (pi - theta) / (2 pi), times w2f
    k_out = (w2f / (2 * math.pi)) * sin * s + pt * k
    t_out = None if t is None else pt * t
    return k_out, t_out


def box(a, axes, f, jnp):
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


def inv_sqrt(v, jnp):
    return jnp.where(v > 0, 1.0 / jnp.sqrt(jnp.where(v > 0, v, 1.0)), 0.0)


def offsets(n: int, reach: int | None) -> np.ndarray:
    """Relative offsets d (mod n) along an axis of size n with |d| <= reach (None: all)."""
    if reach is None or 2 * reach + 1 >= n:
        return np.arange(n)
    return np.arange(-reach, reach + 1) % n


class Layout:
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

    def __init__(self, recursion: Recursion, hp: ModelHP, shape: tuple[int, int, int]):
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
                raise ValueError(
                    f"LAP{recursion.window} needs a resolution divisible by {recursion.window}, got {h}x{w}"
                )
            reach = recursion.window - 1
        dh, dw = offsets(h, reach), offsets(w, reach)
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
            v = variances(jnp.sum(feat * feat, axis=1) / (h * w * c), hp, (), jnp)
            shape = (hp.depth, 1, n) if second else (hp.depth, n, 1)
            return feat, inv_sqrt(v, jnp).reshape(shape), jnp.sqrt(v).reshape(shape)
        feat = x  # (n, H, W, C)
        v = variances(jnp.sum(x * x, axis=-1) / c, hp, (1, 2), jnp)  # (depth, n, H, W)
        v = jnp.moveaxis(v, 1, -1)  # (depth, H, W, n)
        if not second:
            shape = (hp.depth, h, w, n, 1, 1)
            return feat, inv_sqrt(v, jnp).reshape(shape), jnp.sqrt(v).reshape(shape)
        gh, gw = self.gh[:, None, :, None], self.gw[None, :, None, :]
        shape = (hp.depth, h, w, 1, self.n_offsets, n)
        v = v[:, gh, gw].reshape(shape)  # [l, p, d, b] = v[l, p + d, b]
        feat = jnp.moveaxis(feat[:, gh, gw], 0, -2)  # (H, W, Dh, Dw, n, C): x[b, p + d]
        feat = feat.reshape(h, w, self.n_offsets, n, feat.shape[-1])
        return feat, inv_sqrt(v, jnp), jnp.sqrt(v)

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


def variances(v0, hp, axes, jnp):
    """Per-image variances before each ReLU: (depth,) + v0.shape.

    A scan, not an unrolled loop: unrolled, XLA fuses the layers' shifted reads
    into one expression that recomputes each layer once per filter tap (9^depth).
    """
    from jax import lax

    f = hp.filter_size if axes else 1

    def step(v, _):
        v = hp.weight_variance / f**2 * box(v, axes, f, jnp) + hp.bias_variance
        return v / 2, v

    _, vs = lax.scan(step, v0, None, length=hp.depth)
    return vs
