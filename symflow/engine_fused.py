"""The engine's conv-net recursion as one fused Pallas kernel (GAP, LAPk): schedule "fused".

Opt-in (``kernel_fn(arch, hp, schedule="fused")``), for the spatial kinds only, until it
has been measured on a GPU (issue 18, item 1: go past the one-pass-per-layer
bandwidth bound of the "scan" schedule by keeping a tile's state on chip across layers).

What a kernel program does. symflow.engine carries a pair (a, b) of images as
K[p, d], T[p, d], p a pixel and d a relative offset (q = p + d); a convolution is a
wrapped F x F box filter over p alone, so every (pair, offset) runs its own depth-L
recursion on an H x W plane. One program of the grid (n1, n2, D / DB) takes one pair
and a block of DB offsets, holds their K and T planes (DB H W entries each) as
values of the kernel (registers / shared memory on a GPU: on chip), and runs there

    the input covariance  K~ = sigma_w^2 / F^2 / C * sum_c x1[a, p, c] x2[b, p + d, c],  T~ = 0
    every layer           K = box(K~) + b,  T = box(T~ + K~) + b,  ReLU (engine_core.relu)
                          with sqrt(v1[l, a, p] v2[l, b, p + d]) and its inverse
    the readout           sum over the block of w[p, d] K~ and of w[p, d] T~

writing back two numbers per program: the block's share of the pooled NNGP and NTK
(engine_core.Layout.readout_weights), summed over blocks outside. Nothing of size
H W D per pair ever goes to device memory.

The box filter is a product with small circulant matrices (entry [i, j]: how many
taps land i on j, so a filter wider than the image wraps as engine_core.box does):

    "plane"      H W <= 64: state (DB, H W), box = X @ B with B = C_H (x) C_W (H W x H W)
    "separable"  larger:    state (H, DB, W), rows C_H @ X.reshape(H, DB W), then
                            columns X.reshape(H DB, W) @ C_W

so the kernel has no rolls, slices or concatenations. In float32 each product is,
by default ("tf32x2"), two TF32 products: the state split as hi + mid, each rounded
to TF32 by integer masking (round to nearest, ties away, as cvt.rna.tf32.f32), the
circulant (small integers) exact in TF32; the split drops at most 2^-22 of each
entry, about float32's own rounding. On a GPU these run on tensor cores (DEFAULT
precision is TF32 in Pallas' Triton lowering); on a CPU the same products of the
same TF32 numbers run in float32, so the CPU tests check the split itself. "ieee"
(lax.Precision.HIGHEST: Triton's "ieee" dot, CUDA-core FMAs) is the alternative;
float64 (CPU tests) always uses it. The shift p + d reads the second image's
features and variances through an index table G[d, p] = flat(p + d) (loads from
computed addresses in a per-image array of L H W numbers, which stays in L1/L2; not
a gather of values held on chip).

Bytes per pair (float32). From device memory: 2 x 4 B per program written (the
partial sums), D / DB programs per pair: 4 kB at GAP 32 x 32 (D = 1024, DB = 2);
the per-image factors (2 L + C) H W x 4 B and the tables G, w (D H W x 8 B) are
shared by every pair and stay in L2. The "scan" schedule moves (2 + 4 L) D H W x 4 B =
143 MB per pair there (engine.cost_per_pair). From L1/L2 a program reads, per layer,
(2 + 2 DB) H W x 4 B of variances, and once the images and its G and w blocks: about
240 kB per program, 125 MB per pair at GAP 32 x 32 (to cut, if it shows: 1 / sqrt(v1 v2)
computed in the kernel instead of loaded, or larger DB).

Flop per pair, per entry and layer: the box (2 arrays x 2 passes x 2 products x 2 W
flop: 512 TF32 flop at W = 32, on tensor cores; "ieee": 256 flop of CUDA-core FMA),
the split (about 24 integer/float ops), the ReLU (about 37, engine._RELU_FLOPS) and
about 4 more. At GAP 32 x 32, L = 8 (8.4 M entry-layers per pair): 4.3 GFLOP of TF32
(~9 us at the H200's ~495 TFLOP/s dense TF32) and 0.55 G CUDA-core ops (~16 us at
~34 T instructions/s): a bound near 60,000 pairs/s; "ieee" needs ~1.4 G CUDA-core
instructions, a bound near 25,000. The target is >= 15,000 (issue 18).

Where it runs. On a CPU, through Pallas' interpreter (interpret=True): for tests, slow.
On a GPU, lowered by Pallas' Triton backend (chosen explicitly: this jax's default
GPU Pallas backend is Mosaic GPU), whose constraints it keeps: every array in the
kernel has a power-of-2 size (H, W powers of 2, DB a power of 2, channels
zero-padded to a power of 2, offsets padded to a multiple of DB with the offset 0 and
readout weight 0), 2-D dots with every dimension >= 16 (DB >= 16 in "plane", H, W >=
16 in "separable"), no concatenation. ``lower_for_cuda`` lowers the kernel for CUDA on
any machine (tests/test_engine.py). Compiled further on this CPU-only machine
(2026-12-01; the Triton IR printed by Pallas' lowering, compiled with pip's triton
3.9.0 for GPUTarget("cuda", 90, 32), num_stages 1, then its ptxas-blackwell -v
--gpu-name sm_90a; XLA's own Triton is another version), registers per thread and
spill stores at GAP (-: not compiled):

    block_entries  warps  dot     32 x 32         16 x 16        8 x 8
    4096           4      ieee    255, 4.2 kB     -              32, 21 kB
    1024           8      ieee    255, none       174, none      183, none
    2048           8      ieee    255, 296 B      -              -
    1024           8      tf32x2  154, none       62, none       80, none
    2048           8      tf32x2  121, none       120, none      110, none
    4096           8      tf32x2  202, none       182, none      172, none

(tf32x2: mma instructions in the PTX; ieee: none). Hence the defaults: 2048 entries
per program (DB H W), 8 warps, tf32x2.

To be measured on an H200 (bench/kernel_bench.py --schedule scan fused): pairs/s of GAP
and LAP4/LAP8 at 16 x 16 and 32 x 32 against "scan" (4,987 pairs/s at GAP 32 x 32)
and the 15,000 target; that XLA's Triton compiles and runs it (PTX and SASS above came
from another Triton); the agreement with nt there at 1e-5 (summation order and the
tensor cores' accumulation are the GPU's own); block_entries, num_warps and "ieee"
against "tf32x2" (engine_fused.compiled takes them), and whether the L1/L2 reads of
the variances or the occupancy (121 registers x 256 threads: 2 programs per SM) limit it.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from symflow import engine_core

MODES = ("plane", "separable")
_PLANE_MAX = 64  # H W up to which the box is one (H W x H W) product ("plane")
_BLOCK_ENTRIES = 2048  # DB H W per program (default; see the module docstring)
_NUM_WARPS = 8
DOTS = ("tf32x2", "ieee")  # how the box's products run in float32 (float64: always "ieee")
_DOT = "tf32x2"
_TF32_MASK = -8192  # 0xFFFFE000: sign, exponent and the 10 mantissa bits of TF32


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _circulant(n: int, f: int) -> np.ndarray:
    """(n, n): entry [i, j] = how many of the f taps s in -r..r have i - j = s (mod n)."""
    r = f // 2
    c = np.zeros((n, n))
    for s in range(-r, r + 1):
        c += np.roll(np.eye(n), s, axis=0)
    return c


class _Tiling:
    """The fused kernel's tiling: static tables and block sizes of one architecture, hp and image shape."""

    def __init__(self, layout, block_entries: int | None = None, mode: str | None = None, dot: str | None = None):
        if layout.recursion.kind != "spatial":
            raise ValueError(f"the fused schedule is for GAP and LAPk only, not {layout.recursion.kind!r} recursions")
        h, w, c = layout.shape
        hw = h * w
        self.layout, self.h, self.w, self.c, self.hw = layout, h, w, c, hw
        self.mode = mode or ("plane" if hw <= _PLANE_MAX else "separable")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        self.dot = dot or _DOT
        if self.dot not in DOTS:
            raise ValueError(f"dot must be one of {DOTS}, got {self.dot!r}")
        d = layout.n_offsets
        entries = int(block_entries or _BLOCK_ENTRIES)
        self.db = min(_next_pow2(max(1, entries // hw)), _next_pow2(d))
        if self.mode == "plane":  # Triton's dot needs M >= 16 (here M = DB)
            self.db = max(self.db, min(16, _next_pow2(d)))
        self.nblk = -(-d // self.db)
        dpad = self.nblk * self.db
        self.cp = _next_pow2(c)
        # index table G[d, p] = flat index of p + d; padded offsets: d = 0 (weight 0)
        gh = np.zeros((h, dpad), np.int64)
        gw = np.zeros((w, dpad), np.int64)
        dh_n, dw_n = layout.gh.shape[1], layout.gw.shape[1]
        gh[:, :d] = np.repeat(layout.gh, dw_n, axis=1)  # [p_h, d] -> p_h + dh(d)
        gw[:, :d] = np.tile(layout.gw, (1, dh_n))  # [p_w, d] -> p_w + dw(d)
        gh[:, d:] = np.arange(h)[:, None]
        gw[:, d:] = np.arange(w)[:, None]
        g = (gh[:, None, :] * w + gw[None, :, :]).astype(np.int32)  # (H, W, Dpad)
        wts = np.zeros((h, w, dpad))
        wts[:, :, :d] = layout.readout_weights
        if self.mode == "plane":  # state (DB, H W)
            self.g = np.ascontiguousarray(g.reshape(hw, dpad).T)
            self.wts = np.ascontiguousarray(wts.reshape(hw, dpad).T)
            self.boxes = (np.kron(_circulant(h, layout.f), _circulant(w, layout.f)),)
        else:  # state (H, DB, W)
            self.g = np.ascontiguousarray(g.transpose(0, 2, 1))
            self.wts = np.ascontiguousarray(wts.transpose(0, 2, 1))
            self.boxes = (_circulant(h, layout.f), _circulant(w, layout.f))

    @property
    def state_shape(self):
        return (self.db, self.hw) if self.mode == "plane" else (self.h, self.db, self.w)


def bytes_per_pair(layout, itemsize: int = 4, **tiling_kw) -> int:
    """Device memory per pair of a fused call: its partial sums (2 per offset block)."""
    return 2 * _Tiling(layout, **tiling_kw).nblk * itemsize


def _side(tiling: _Tiling, x):
    """Per-image factors: features (n, Cp, H W), 1 / sqrt(v) and sqrt(v) (n, depth, H W)."""
    import jax.numpy as jnp

    layout = tiling.layout
    n, h, w, c = x.shape
    v = engine_core.variances(jnp.sum(x * x, axis=-1) / c, layout.hp, (1, 2), jnp)  # (depth, n, H, W)
    v = jnp.moveaxis(v, 1, 0).reshape(n, layout.hp.depth, h * w)
    feat = jnp.moveaxis(x, -1, 1).reshape(n, c, h * w)
    if tiling.cp != c:
        feat = jnp.concatenate([feat, jnp.zeros((n, tiling.cp - c, h * w), x.dtype)], axis=1)
    return feat, engine_core.inv_sqrt(v, jnp), jnp.sqrt(v)


def _round_tf32(x, jnp, lax):
    """float32 x rounded to the nearest TF32 number (ties away from zero, as cvt.rna.tf32.f32)."""
    bits = lax.bitcast_convert_type(x, jnp.int32)
    return lax.bitcast_convert_type((bits + 0x1000) & _TF32_MASK, jnp.float32)


def _kernel(tiling: _Tiling, *refs):
    """One program: pair (a, b) = (program 0, program 1), offsets block program 2."""
    import jax.numpy as jnp
    from jax import lax

    x1_ref, i1_ref, s1_ref, x2_ref, i2_ref, s2_ref, g_ref, w_ref, *rest = refs
    box_refs, (ok_ref, ot_ref) = rest[:-2], rest[-2:]
    layout, hp = tiling.layout, tiling.layout.hp
    h, w, db = tiling.h, tiling.w, tiling.db
    wv, bv, w2f = hp.weight_variance, hp.bias_variance, layout.w2f
    g = g_ref[...]
    dtype = x1_ref.dtype
    split = tiling.dot == "tf32x2" and dtype == jnp.float32

    def mm(a, b, state_left=True):
        """a @ b, one of them the state, the other a circulant (small integers: exact in TF32)."""
        if not split:
            return jnp.dot(a, b, precision=lax.Precision.HIGHEST, preferred_element_type=dtype)
        # the state = hi + mid + (2^-22 relative at most), hi and mid exact in TF32: two TF32
        # products (tensor cores on a GPU; DEFAULT precision is TF32 there and float32 on a CPU,
        # where the products of these TF32 numbers are then the same up to summation order)
        x = a if state_left else b
        hi = _round_tf32(x, jnp, lax)
        mid = _round_tf32(x - hi, jnp, lax)
        out = 0
        for part in (hi, mid):
            pa, pb = (part, b) if state_left else (a, part)
            out = out + jnp.dot(pa, pb, precision=lax.Precision.DEFAULT, preferred_element_type=dtype)
        return out

    if tiling.mode == "plane":
        (b_ref,) = box_refs

        def plane(v):  # (H W,) -> broadcast against (DB, H W)
            return v[None, :]

        def box(x):
            return mm(x, b_ref[...])

    else:
        ch_ref, cw_ref = box_refs

        def plane(v):  # (H W,) -> broadcast against (H, DB, W)
            return v.reshape(h, w)[:, None, :]

        def box(x):
            y = mm(ch_ref[...], x.reshape(h, db * w), state_left=False)
            y = mm(y.reshape(h * db, w), cw_ref[...])
            return y.reshape(h, db, w)

    # input covariance x1[p] . x2[p + d] / C, times the first layer's sigma_w^2 / F^2
    k0 = plane(x1_ref[0, :]) * x2_ref[0, g]
    for ch in range(1, tiling.c):
        k0 = k0 + plane(x1_ref[ch, :]) * x2_ref[ch, g]
    k0 = k0 * (w2f / tiling.c)

    def layer(l, carry, scale):  # scale: the next layer's sigma_w^2 / F^2 (the readout's sigma_w^2 last)
        kt, tt = carry
        k = box(kt) + bv
        t = box(tt + kt) + bv
        inv_s = plane(i1_ref[l, :]) * i2_ref[l, g]
        s = plane(s1_ref[l, :]) * s2_ref[l, g]
        return engine_core.relu(k, t, inv_s, s, scale, jnp)

    # the last layer peeled off: its scale is a constant, as every other layer's
    carry = lax.fori_loop(0, hp.depth - 1, partial(layer, scale=w2f), (k0, jnp.zeros_like(k0)))
    kt, tt = layer(hp.depth - 1, carry, wv)
    wts = w_ref[...]
    ok_ref[0, 0, 0] = jnp.sum(kt * wts)
    ot_ref[0, 0, 0] = jnp.sum(tt * wts)


def _tile_fn(tiling: _Tiling, interpret: bool, num_warps: int | None = None):
    """(side1, side2) -> (nngp, ntk) (n1, n2): one pallas_call over (n1, n2, offset blocks)."""
    import jax
    import jax.numpy as jnp
    from jax.experimental import pallas as pl

    hp = tiling.layout.hp
    st = tiling.state_shape
    if tiling.mode == "plane":
        table_spec = pl.BlockSpec(st, lambda a, b, j: (j, 0))
    else:
        table_spec = pl.BlockSpec(st, lambda a, b, j: (0, j, 0))
    params = {}
    if not interpret:
        from jax.experimental.pallas import triton as pltriton

        params["compiler_params"] = pltriton.CompilerParams(num_warps=num_warps or _NUM_WARPS, num_stages=1)

    def tile(side1, side2):
        f1, i1, s1 = side1
        f2, i2, s2 = side2
        n1, n2, dtype = f1.shape[0], f2.shape[0], f1.dtype
        first = lambda a, b, j: (a, 0, 0)  # noqa: E731
        second = lambda a, b, j: (b, 0, 0)  # noqa: E731
        img = (None, tiling.cp, tiling.hw)
        var = (None, hp.depth, tiling.hw)
        boxes = [jnp.asarray(m, dtype) for m in tiling.boxes]
        out = jax.ShapeDtypeStruct((n1, n2, tiling.nblk), dtype)
        ok, ot = pl.pallas_call(
            partial(_kernel, tiling),
            out_shape=(out, out),
            grid=(n1, n2, tiling.nblk),
            in_specs=[
                pl.BlockSpec(img, first),
                pl.BlockSpec(var, first),
                pl.BlockSpec(var, first),
                pl.BlockSpec(img, second),
                pl.BlockSpec(var, second),
                pl.BlockSpec(var, second),
                table_spec,
                table_spec,
            ]
            + [pl.BlockSpec(m.shape, lambda a, b, j: (0, 0)) for m in boxes],
            out_specs=(
                pl.BlockSpec((1, 1, 1), lambda a, b, j: (a, b, j)),
                pl.BlockSpec((1, 1, 1), lambda a, b, j: (a, b, j)),
            ),
            interpret=interpret,
            name="symflow_fused_layers",
            **params,
        )(f1, i1, s1, f2, i2, s2, jnp.asarray(tiling.g), jnp.asarray(tiling.wts, dtype), *boxes)
        nngp = jnp.sum(ok, axis=-1) + hp.bias_variance
        ntk = jnp.sum(ot, axis=-1) + nngp
        return nngp, ntk

    return tile


def compiled(
    layout,
    *,
    block_entries: int | None = None,
    mode: str | None = None,
    dot: str | None = None,
    interpret: bool | None = None,
    num_warps: int | None = None,
):
    """jitted (side1, side2, tile, whole), as engine._compiled returns them, for the fused schedule."""
    import jax

    tiling = _Tiling(layout, block_entries, mode, dot)
    if interpret is None:
        interpret = jax.default_backend() == "cpu"
    side = jax.jit(partial(_side, tiling))
    tile = _tile_fn(tiling, interpret, num_warps)

    def whole(x1, x2):
        return tile(_side(tiling, x1), _side(tiling, x2))

    return side, side, jax.jit(tile), jax.jit(whole)


def lower_for_cuda(
    arch_name: str, hp, shape, n1: int = 2, n2: int = 2, *, dtype="float32", num_warps: int | None = None, **tiling_kw
):
    """jax.export of the fused tile for platforms=["cuda"] (Pallas Triton lowering), from any machine.

    Returns the jax.export.Exported; raises what the lowering raises. The Triton
    kernel inside is compiled to PTX only when a GPU runs it.
    """
    import jax
    import jax.numpy as jnp

    layout = engine_core.Layout(engine_core.recursion_of(arch_name), hp, tuple(shape))
    tiling = _Tiling(layout, **tiling_kw)
    tile = _tile_fn(tiling, interpret=False, num_warps=num_warps)
    h, w, _ = shape
    dt = jnp.dtype(dtype)

    def sds(n):
        return (
            jax.ShapeDtypeStruct((n, tiling.cp, h * w), dt),
            jax.ShapeDtypeStruct((n, hp.depth, h * w), dt),
            jax.ShapeDtypeStruct((n, hp.depth, h * w), dt),
        )

    # the Triton custom call has no serialisation compatibility guarantee: allowed here, as
    # the point is the lowering (nothing is stored)
    check = jax.export.DisabledSafetyCheck.custom_call(_TRITON_CALL)
    return jax.export.export(jax.jit(tile), platforms=["cuda"], disabled_checks=[check])(sds(n1), sds(n2))


_TRITON_CALL = "__gpu$xla.gpu.triton"
