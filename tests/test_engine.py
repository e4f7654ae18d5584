"""symflow.engine against neural-tangents, an extended-precision reference, and Theorem 4.1.

Tolerances (relative, per entry):
- float32 engine vs nt in float64: 1e-5 on every entry.
- float64 engine vs nt in float64: 1e-10 on every pair of distinct images; on an
  image paired with itself (the diagonal of K(x, x)) nt's own float64 error is
  about 1e-7 (its ReLU takes sqrt(v1 v2 - K^2) where the two are equal up to
  rounding), so there the engine is checked at 1e-10 against the np.longdouble
  reference of tests/engine_cases.py, and against nt at 1e-6.
- float32 engine vs live nt in float32: 1e-5 on distinct pairs (nt's float32 error
  on the self-pair diagonal reaches 1e-3 for the same reason).
nt's float64 values come from tests/data/engine_nt_golden.npz (written by
tests/make_engine_golden.py; running nt on every case here would take minutes);
test_live_nt checks one case against nt run now.
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np
import pytest

from engine_cases import CASES, DEFAULT, GOLDEN, case_id, inputs, real_images, reference
from symflow.architectures import ARCHITECTURES, ModelHP
from symflow.engine import kernel_fn, supports

ARCHS = ("FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8")


@contextlib.contextmanager
def x64(enabled: bool):
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", enabled)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", old)


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN))


def rel_err(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b) / np.abs(b)


def case_inputs(golden, res, n):
    x1, x2 = golden[f"inputs-R{res}-n{n}/x1"], golden[f"inputs-R{res}-n{n}/x2"]
    return x1, x2


def test_supports():
    """The engine computes what the registry says it does (Architecture.engine_recursion)."""
    from symflow.architectures import Architecture, build_gap
    from symflow.engine_core import Recursion, recursion_of

    for name in ARCHS:
        assert supports(name)
    assert not supports("ResNet")
    with pytest.raises(ValueError):
        kernel_fn("ResNet", DEFAULT)
    assert [recursion_of(a) for a in ARCHS] == [
        Recursion("fcn"), Recursion("pixel"), Recursion("pixel"), Recursion("spatial"),
        Recursion("spatial", 4), Recursion("spatial", 8),
    ]
    with pytest.raises(ValueError, match="engine_recursion must be None or one of"):
        Architecture("GAPX", "GAP's network", build_gap, engine_recursion="gap")


def test_golden_inputs_are_todays_inputs(golden):
    """The stored inputs are what engine_cases.inputs builds now (random draws, CIFAR sample)."""
    for res, n in sorted({(r, n) for _, _, r, n in CASES}):
        x1, x2 = inputs(res, n)
        np.testing.assert_array_equal(x1, golden[f"inputs-R{res}-n{n}/x1"])
        np.testing.assert_array_equal(x2, golden[f"inputs-R{res}-n{n}/x2"])


@pytest.mark.parametrize("arch,hp,res,n", CASES, ids=[case_id(*c) for c in CASES])
def test_float32_matches_nt(golden, arch, hp, res, n):
    key = case_id(arch, hp, res, n)
    x1, x2 = case_inputs(golden, res, n)
    with x64(False):
        fn = kernel_fn(arch, hp)
        k12 = fn(x1.astype(np.float32), x2.astype(np.float32))
        k11 = fn(x1.astype(np.float32), None)
    for name, got in zip(("nngp", "ntk"), k12):
        assert got.dtype == np.float32 and got.shape == (n, n)
        assert rel_err(got, golden[f"{key}/{name}12"]).max() < 1e-5, name
    for name, got in zip(("nngp", "ntk"), k11):
        assert rel_err(got, golden[f"{key}/{name}11"]).max() < 1e-5, name


@pytest.mark.parametrize("arch,hp,res,n", CASES, ids=[case_id(*c) for c in CASES])
def test_float64_matches_nt(golden, arch, hp, res, n):
    key = case_id(arch, hp, res, n)
    x1, x2 = case_inputs(golden, res, n)
    with x64(True):
        fn = kernel_fn(arch, hp)
        k12 = fn(x1, x2)
        k11 = fn(x1, None)
        k11_explicit = fn(x1, x1)
    off = ~np.eye(n, dtype=bool)
    for a, b in zip(k11, k11_explicit):  # x2 = None is x2 = x1 (symmetrised: equal up to rounding)
        assert rel_err(a, b).max() < 1e-13
    for name, got in zip(("nngp", "ntk"), k12):
        assert got.dtype == np.float64
        assert rel_err(got, golden[f"{key}/{name}12"]).max() < 1e-10, name
    for name, got in zip(("nngp", "ntk"), k11):
        err = rel_err(got, golden[f"{key}/{name}11"])
        assert err[off].max() < 1e-10, name
        assert err[~off].max() < 1e-6, name  # nt's own float64 error on self-pairs
    if res <= 8:  # the extended-precision reference, self-pairs included
        for got, want in zip(k11, reference(arch, hp, x1, x1)):
            assert rel_err(got, want.astype(np.float64)).max() < 1e-10


PLAIN_CASES = [next(c for c in CASES if c[0] == arch) for arch in ARCHS]


@pytest.mark.parametrize("arch,hp,res,n", PLAIN_CASES, ids=[case_id(*c) for c in PLAIN_CASES])
def test_plain_schedule_matches_nt(golden, arch, hp, res, n):
    """The schedule without conditionals (for accelerators) meets the same tolerances against
    nt as the default scan: 1e-5 in float32, 1e-10 in float64."""
    key = case_id(arch, hp, res, n)
    x1, x2 = case_inputs(golden, res, n)
    for enabled, dtype, tol in ((False, np.float32, 1e-5), (True, np.float64, 1e-10)):
        with x64(enabled):
            got = kernel_fn(arch, hp, schedule="plain")(x1.astype(dtype), x2.astype(dtype))
        for name, g in zip(("nngp", "ntk"), got):
            assert g.dtype == dtype and rel_err(g, golden[f"{key}/{name}12"]).max() < tol, (name, dtype)
    with pytest.raises(ValueError, match="schedule must be one of"):
        kernel_fn(arch, hp, schedule="no-such-schedule")


def test_reference_matches_nt(golden):
    """The reference itself agrees with nt on distinct pairs (so it is a fair judge of the diagonal)."""
    for arch, hp, res, n in CASES:
        if res != 4:
            continue
        key = case_id(arch, hp, res, n)
        x1, x2 = case_inputs(golden, res, n)
        for name, want in zip(("nngp", "ntk"), reference(arch, hp, x1, x2)):
            assert rel_err(want.astype(np.float64), golden[f"{key}/{name}12"]).max() < 1e-12


def test_live_nt():
    """Live neural-tangents (jitted, float32), distinct pairs: guards the stored values."""
    x1, x2 = inputs(4, 4)
    x1, x2 = x1[:2].astype(np.float32), x2[:2].astype(np.float32)
    with x64(False):
        nt_fn = jax.jit(ARCHITECTURES.get("LAP4").stax(DEFAULT)[2], static_argnames="get")
        want = nt_fn(x1, x2, ("nngp", "ntk"))
        got = kernel_fn("LAP4", DEFAULT)(x1, x2)
    for g, w in zip(got, want):
        assert rel_err(g, w).max() < 1e-5


@pytest.mark.parametrize("arch,dtype", [("GAP", "float32")])
def test_tiles_and_symmetric_call(arch, dtype):
    """x2 = None equals x2 = x1; ragged tiles (pair_batch) equal one tile."""
    x1, x2 = inputs(4, 4)
    xa = np.concatenate([x1, x2[:3]])  # 7 images: tiles of 2 x 2 leave ragged edges
    tol = 1e-6 if dtype == "float32" else 1e-12
    with x64(dtype == "float64"):
        xa = xa.astype(dtype)
        whole = kernel_fn(arch, DEFAULT)
        tiled = kernel_fn(arch, DEFAULT, pair_batch=4)
        sym, explicit, one = tiled(xa, None), tiled(xa, xa), whole(xa, xa[:5])
    for s, e, o in zip(sym, explicit, one):
        assert s.dtype == np.dtype(dtype) and s.shape == (7, 7)
        np.testing.assert_array_equal(s, s.T)
        assert rel_err(s, e).max() < tol
        assert rel_err(e[:, :5], o).max() < tol


# Theorem 4.1: which groups each kernel is invariant to (float64, real 8 x 8 images)
INVARIANT = {
    "FCN": ("o3_shared", "o3_pixel", "perm", "o3d"),
    "LCN": ("o3_shared", "o3_pixel"),
    "VEC": ("o3_shared", "o3_pixel"),
    "GAP": ("o3_shared",),
    "LAP4": ("o3_shared",),
    "LAP8": ("o3_shared",),
}
NOT_INVARIANT = {
    "FCN": (),
    "LCN": ("perm", "o3d"),
    "VEC": ("perm", "o3d"),
    "GAP": ("o3_pixel",),
    "LAP4": ("o3_pixel",),
    "LAP8": ("o3_pixel",),
}


@pytest.mark.parametrize("arch", ARCHS)
def test_theorem_4_1_invariances(arch):
    from symflow.groups import transform_images

    x = real_images(8, 4)
    with x64(True):
        fn = kernel_fn(arch, DEFAULT)
        base = fn(x, None)
        for group in INVARIANT[arch] + NOT_INVARIANT[arch]:
            moved = fn(transform_images(group, 0, x), None)
            err = max(rel_err(m, b).max() for m, b in zip(moved, base))
            if group in INVARIANT[arch]:
                assert err < 1e-11, (group, err)
            else:
                assert err > 1e-3, (group, err)
    # and the registry claims exactly this (the kernel cache reuses blocks on these claims)
    spec = ARCHITECTURES.get(arch)
    assert all(spec.claims(g) for g in INVARIANT[arch]) and not any(spec.claims(g) for g in NOT_INVARIANT[arch])


def test_zero_variance_pixels():
    """bias 0 and an all-zero image: variances 0, where the ReLU must give 0 (nt: theta = pi / 2), not NaN."""
    hp = ModelHP(depth=3, bias_variance=0.0)
    x1, x2 = inputs(4, 4)
    x1 = x1.copy()
    x1[0] = 0.0
    with x64(True):
        got = kernel_fn("GAP", hp)(x1, x2)
    for g, w in zip(got, reference("GAP", hp, x1, x2)):
        assert np.all(np.isfinite(g)) and np.all(g[0] == 0)
        np.testing.assert_allclose(g, w.astype(np.float64), rtol=1e-10, atol=1e-300)


# -- the fused schedule (symflow/engine_fused.py: one Pallas kernel per block of offsets) ----------

FUSED_ARCHS = ("GAP", "LAP4", "LAP8")
FUSED_CASES = [c for c in CASES if c[0] in FUSED_ARCHS]
# make test-fast keeps each architecture's first case; the rest are marked slow (make test runs all)
_FIRST_FUSED = {next(c for c in FUSED_CASES if c[0] == arch) for arch in FUSED_ARCHS}


@pytest.mark.parametrize(
    "arch,hp,res,n",
    [pytest.param(*c, id=case_id(*c), marks=() if c in _FIRST_FUSED else pytest.mark.slow) for c in FUSED_CASES],
)
def test_fused_schedule_matches_nt(golden, arch, hp, res, n):
    """schedule="fused" (through Pallas' interpreter on a CPU) meets the engine's tolerances against
    nt: 1e-5 in float32, 1e-10 in float64; and x2 = None is exactly symmetric."""
    key = case_id(arch, hp, res, n)
    x1, x2 = case_inputs(golden, res, n)
    for enabled, dtype, tol in ((False, np.float32, 1e-5), (True, np.float64, 1e-10)):
        with x64(enabled):
            fn = kernel_fn(arch, hp, schedule="fused")
            got = fn(x1.astype(dtype), x2.astype(dtype))
            sym = fn(x1.astype(dtype), None) if res == 4 else None
        for name, g in zip(("nngp", "ntk"), got):
            assert g.dtype == dtype and rel_err(g, golden[f"{key}/{name}12"]).max() < tol, (name, dtype)
        if sym is not None:
            for name, g in zip(("nngp", "ntk"), sym):
                np.testing.assert_array_equal(g, g.T)
                assert rel_err(g, golden[f"{key}/{name}11"]).max() < tol, (name, dtype)


@pytest.mark.slow  # ~15 s each on CPU (Pallas' interpreter, small offset blocks: many programs)
@pytest.mark.parametrize("mode", ["plane", "separable"])
@pytest.mark.parametrize("dot", ["tf32x2", "ieee"])
def test_fused_box_modes_match_nt(golden, mode, dot):
    """Both ways the fused kernel applies the box filter (one (HW x HW) circulant product, or
    rows then columns), each with both kinds of product, in float32 on the resolution-4 and -8
    cases, 4 offsets or fewer per program; the default picks "plane" up to 8 x 8 and
    "separable" above (the 16 x 16 cases of test_fused_schedule_matches_nt), and "tf32x2"."""
    from symflow import engine_core, engine_fused

    for arch, hp, res, n in FUSED_CASES:
        if res > 8:
            continue
        key = case_id(arch, hp, res, n)
        x1, x2 = case_inputs(golden, res, n)
        layout = engine_core.Layout(engine_core.recursion_of(arch), hp, x1.shape[1:])
        with x64(False):
            whole = engine_fused.compiled(layout, mode=mode, dot=dot, block_entries=256)[3]
            got = whole(x1.astype(np.float32), x2.astype(np.float32))
        for name, g in zip(("nngp", "ntk"), got):
            assert rel_err(g, golden[f"{key}/{name}12"]).max() < 1e-5, (key, name)


def test_fused_only_spatial():
    for arch in ("FCN", "LCN", "VEC"):
        with pytest.raises(ValueError, match="'fused' is for GAP and LAPk only"):
            kernel_fn(arch, DEFAULT, schedule="fused")


def test_default_schedule_per_family(golden, monkeypatch):
    """The default schedule is chosen per family (dense: FCN, VEC, LCN; spatial: GAP, LAPk), so a
    backend can default GAP and LAPk to "fused" while FCN, VEC and LCN keep a schedule they have;
    kernel_fn then sizes its tiles by the fused kernel's few bytes a pair (one tile here, where
    "scan"'s state would cut the same pairs into several)."""
    from symflow import engine, engine_core, engine_fused

    with pytest.raises(ValueError, match="does not implement"):
        engine.default_schedule("ResNet")
    assert {engine.default_schedule(a) for a in ARCHS} == {"scan"}
    monkeypatch.setitem(engine._SCHEDULE_CPU, "spatial", "fused")
    assert [engine.default_schedule(a) for a in ARCHS] == ["scan", "scan", "scan", "fused", "fused", "fused"]
    arch, hp, res, n = FUSED_CASES[0]
    x1, x2 = case_inputs(golden, res, n)
    layout = engine_core.Layout(engine_core.recursion_of(arch), hp, x1.shape[1:])
    per_pair_fused = engine_fused.bytes_per_pair(layout, 4)
    per_pair_scan = engine._STATE_ARRAYS * layout.entries * 4
    # a tile budget that holds every pair at the fused kernel's bytes, but not at scan's
    budget = per_pair_fused * len(x1) * len(x2)
    assert budget < per_pair_scan * len(x1) * len(x2)
    monkeypatch.setattr(engine, "_TILE_BYTES", budget)
    tiles = []
    tile_of = engine._tile
    monkeypatch.setattr(engine, "_tile", lambda n1, n2, b: tiles.append(tile_of(n1, n2, b)) or tiles[-1])
    engine._COMPILED.clear()
    with x64(False):
        got = kernel_fn(arch, hp)(x1.astype(np.float32), x2.astype(np.float32))
        dense = kernel_fn("VEC", hp)(x1.astype(np.float32), x2.astype(np.float32))
    schedules = {key[-1] for key in engine._COMPILED}
    assert schedules == {"fused", "scan"}, schedules  # GAP fused, VEC scan
    assert tiles[0] == (len(x1), len(x2)), tiles  # GAP: all pairs in one tile at the fused bytes
    key = case_id(arch, hp, res, n)
    for name, g in zip(("nngp", "ntk"), got):
        assert rel_err(g, golden[f"{key}/{name}12"]).max() < 1e-5, name
    assert all(np.isfinite(d).all() for d in dense)


@pytest.mark.parametrize("arch,res,dot", [("GAP", 8, None), ("GAP", 32, None), ("GAP", 32, "ieee"), ("LAP4", 16, None),
                                          ("LAP8", 32, None)])  # fmt: skip
def test_fused_lowers_for_cuda(arch, res, dot):
    """The fused kernel lowers for CUDA through Pallas' Triton backend on this (GPU-less) machine:
    Triton's constraints that are checked at lowering (power-of-2 array sizes, 2-D dots, the
    supported primitives) hold. Compiling the Triton IR to PTX needs a GPU and is not tested."""
    from symflow import engine_fused

    try:
        exported = engine_fused.lower_for_cuda(arch, DEFAULT, (res, res, 3), 4, 4, dot=dot)
    except (ImportError, ModuleNotFoundError) as e:
        pytest.skip(f"this jaxlib cannot lower Pallas for cuda: {e}")
    except ValueError as e:
        if "Cannot lower pallas_call on platform" in str(e):
            pytest.skip(f"this jaxlib cannot lower Pallas for cuda: {e}")
        raise
    text = exported.mlir_module()
    assert exported.platforms == ("cuda",)
    assert "custom_call @__gpu$xla.gpu.triton" in text
    assert "grid_x = 4 : i32, grid_y = 4 : i32" in text


def test_fused_tf32_rounding():
    """The TF32 split of the fused kernel's products: round to nearest (ties away from zero) to
    10 mantissa bits, so hi + mid carries every float32 to within 2^-22 relative."""
    import jax.numpy as jnp
    from jax import lax

    from symflow.engine_fused import _round_tf32

    x = np.random.default_rng(0).standard_normal(10_000).astype(np.float32) * np.float32(1e3)
    x = np.concatenate([x, np.float32([1 + 2.0**-11, -(1 + 2.0**-11), 1 + 3 * 2.0**-12, 0.0])])
    with x64(False):
        hi = np.asarray(_round_tf32(jnp.asarray(x), jnp, lax))
        mid = np.asarray(_round_tf32(jnp.asarray(x - hi), jnp, lax))
    assert np.all(hi.view(np.int32) & 0x1FFF == 0) and np.all(mid.view(np.int32) & 0x1FFF == 0)
    assert np.all(np.abs(x - hi) <= 2.0**-11 * np.abs(x))
    assert np.all(np.abs(x - hi - mid) <= 2.0**-22 * np.abs(x))
    np.testing.assert_array_equal(hi[-4:], np.float32([1 + 2.0**-10, -(1 + 2.0**-10), 1 + 2.0**-10, 0.0]))
